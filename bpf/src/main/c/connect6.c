/* cgroup/connect6: the IPv6-socket half of connect4. A dual-stack IPv6 socket connecting to an
 * IPv4-mapped address (::ffff:a.b.c.d, what Java and most runtimes do for an IPv4 destination on
 * an AF_INET6 socket) goes through tcp_v4_connect without running connect4, so it is redirected
 * here, to ::ffff:127.0.0.1:<outbound_port>, i.e. the same IPv4 listener, with the same record.
 *
 * Native IPv6 destinations are left alone: there is no IPv6 in-pod listener and no IPv6 record
 * yet (the mesh's pod and service addresses are IPv4). Same exemptions as connect4.
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
	if (ctx->user_ip6[0] != 0 || ctx->user_ip6[1] != 0 ||
	    ctx->user_ip6[2] != bpf_htonl(0xffff))
		return 1; /* not v4-mapped */
	struct nm_pod_config *pod = nm_redirect4(ctx, ctx->user_ip6[3], (__u16)ctx->user_port);
	if (!pod)
		return 1;
	ctx->user_ip6[3] = bpf_htonl(0x7f000001);
	ctx->user_port = bpf_htons(pod->outbound_port);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
