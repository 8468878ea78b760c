/* cgroup/connect6: connect4's counterpart for AF_INET6 sockets.
 *
 * - IPv4-mapped destinations (::ffff:a.b.c.d: a dual-stack socket reaching an IPv4 address, which
 *   goes through tcp_v4_connect without running connect4) get connect4's record and are rewritten
 *   to ::ffff:127.0.0.1:<outbound_port>, the same IPv4 listener.
 * - Native IPv6 destinations are rewritten to [::1]:<outbound_port> with a record in
 *   nm_orig6_by_cookie, only when the pod's config says the proxy listens there (NM_POD_IPV6);
 *   otherwise they are left alone. ::1 and link-local (fe80::/10) destinations are left alone.
 *
 * Same exemptions as connect4 (unregistered namespaces, the proxy's mark, not TCP).
 */
#include "redirect.h"
#include <bpf/bpf_endian.h>
#include <linux/in.h>

#define SOCK_STREAM 1

SEC("cgroup/connect6")
int nm_connect6(struct bpf_sock_addr *ctx)
{
	if (ctx->type != SOCK_STREAM || ctx->protocol != IPPROTO_TCP)
		return 1;
	__u32 a0 = ctx->user_ip6[0], a1 = ctx->user_ip6[1], a2 = ctx->user_ip6[2],
	      a3 = ctx->user_ip6[3];
	if (a0 == 0 && a1 == 0 && a2 == bpf_htonl(0xffff)) {
		struct nm_pod_config *pod = nm_redirect4(ctx, a3, (__u16)ctx->user_port);
		if (!pod)
			return 1;
		ctx->user_ip6[3] = bpf_htonl(0x7f000001);
		ctx->user_port = bpf_htons(pod->outbound_port);
		return 1;
	}
	if (a0 == 0 && a1 == 0 && a2 == 0 && (a3 == 0 || a3 == bpf_htonl(1)))
		return 1; /* :: and ::1 */
	if ((bpf_ntohl(a0) & 0xffc00000) == 0xfe800000)
		return 1; /* link-local */
	__u64 netns;
	struct nm_pod_config *pod = nm_pod_of(ctx, &netns);
	if (!pod || !(pod->flags & NM_POD_IPV6))
		return 1;
	struct nm_orig_dst6 orig = {
		.ip6 = {a0, a1, a2, a3},
		.port = (__u16)ctx->user_port,
		.netns = netns,
	};
	__u64 cookie = bpf_get_socket_cookie(ctx);
	if (bpf_map_update_elem(&nm_orig6_by_cookie, &cookie, &orig, BPF_ANY) != 0)
		return 1;
	ctx->user_ip6[0] = 0;
	ctx->user_ip6[1] = 0;
	ctx->user_ip6[2] = 0;
	ctx->user_ip6[3] = bpf_htonl(1);
	ctx->user_port = bpf_htons(pod->outbound_port);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
