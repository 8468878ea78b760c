/* The outbound decision shared by connect4 and connect6: whether a TCP connect from this socket is
 * redirected, and the record it leaves under the socket cookie. */
#ifndef NODEMESH_REDIRECT_H
#define NODEMESH_REDIRECT_H

#include "maps.h"

/* The registered pod's config, or NULL when the socket is not one to redirect (namespace not
 * registered, or the proxy's own marked socket). */
static __always_inline struct nm_pod_config *nm_pod_of(struct bpf_sock_addr *ctx, __u64 *netns)
{
	*netns = bpf_get_netns_cookie(ctx);
	struct nm_pod_config *pod = bpf_map_lookup_elem(&nm_pod_netns, netns);
	if (!pod)
		return 0;
	struct bpf_sock *sk = ctx->sk;
	if (!sk)
		return 0;
	if (pod->proxy_mark != 0 && sk->mark == pod->proxy_mark)
		return 0;
	return pod;
}

/* IPv4 destination (network order). Returns the pod's config when the connect must go to the
 * proxy and the record was stored, NULL to leave it alone. */
static __always_inline struct nm_pod_config *nm_redirect4(struct bpf_sock_addr *ctx, __u32 dst,
							  __u16 port)
{
	/* 127.0.0.0/8, network order: the first byte is the lowest. */
	if ((dst & 0xff) == 127)
		return 0;
	__u64 netns;
	struct nm_pod_config *pod = nm_pod_of(ctx, &netns);
	if (!pod)
		return 0;
	struct nm_orig_dst orig = {
		.ip4 = dst,
		.port = port,
		.netns = netns,
	};
	__u64 cookie = bpf_get_socket_cookie(ctx);
	if (bpf_map_update_elem(&nm_orig_by_cookie, &cookie, &orig, BPF_ANY) != 0)
		return 0; /* no record, no redirect: the proxy could not route it */
	return pod;
}

#endif
