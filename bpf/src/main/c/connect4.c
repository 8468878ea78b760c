/* cgroup/connect4: sends a registered pod's outbound TCP connects to the node proxy's in-pod
 * outbound listener (127.0.0.1:<outbound_port>) and remembers where they meant to go.
 *
 * Left alone: namespaces not in nm_pod_netns, sockets carrying the proxy's mark (its own
 * upstream connects), loopback destinations, anything not TCP. Always returns 1 (allow): this
 * program redirects, it never denies.
 */
#include "redirect.h"
#include <bpf/bpf_endian.h>
#include <linux/in.h>
#include <linux/socket.h>

#define SOCK_STREAM 1

SEC("cgroup/connect4")
int nm_connect4(struct bpf_sock_addr *ctx)
{
	if (ctx->type != SOCK_STREAM || ctx->protocol != IPPROTO_TCP)
		return 1;
	struct nm_pod_config *pod = nm_redirect4(ctx, ctx->user_ip4, (__u16)ctx->user_port);
	if (!pod)
		return 1;
	ctx->user_ip4 = bpf_htonl(0x7f000001);
	ctx->user_port = bpf_htons(pod->outbound_port);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
