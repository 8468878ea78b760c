/* cgroup/connect4: sends a registered pod's outbound TCP connects to the node proxy's in-pod
 * outbound listener (127.0.0.1:<outbound_port>) and remembers where they meant to go.
 *
 * Left alone: namespaces not in nm_pod_netns, sockets carrying the proxy's mark (its own
 * upstream connects), loopback destinations, anything not TCP. Always returns 1 (allow): this
 * program redirects, it never denies.
 */
#include "maps.h"
#include <bpf/bpf_endian.h>
#include <linux/in.h>
#include <linux/socket.h>

#define SOCK_STREAM 1

SEC("cgroup/connect4")
int nm_connect4(struct bpf_sock_addr *ctx)
{
	if (ctx->type != SOCK_STREAM || ctx->protocol != IPPROTO_TCP)
		return 1;
	__u32 dst = ctx->user_ip4;
	/* 127.0.0.0/8, network order: the first byte is the lowest. */
	if ((dst & 0xff) == 127)
		return 1;
	__u64 netns = bpf_get_netns_cookie(ctx);
	struct nm_pod_config *pod = bpf_map_lookup_elem(&nm_pod_netns, &netns);
	if (!pod)
		return 1;
	struct bpf_sock *sk = ctx->sk;
	if (!sk)
		return 1;
	if (pod->proxy_mark != 0 && sk->mark == pod->proxy_mark)
		return 1;

	struct nm_orig_dst orig = {
		.ip4 = dst,
		.port = (__u16)ctx->user_port,
		.netns = netns,
	};
	__u64 cookie = bpf_get_socket_cookie(ctx);
	if (bpf_map_update_elem(&nm_orig_by_cookie, &cookie, &orig, BPF_ANY) != 0)
		return 1; /* no record, no redirect: the proxy could not route it */
	ctx->user_ip4 = bpf_htonl(0x7f000001);
	ctx->user_port = bpf_htons(pod->outbound_port);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
