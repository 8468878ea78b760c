/* sockops: moves connect4's / connect6's record from the socket cookie to the client end of the
 * connection once it is established (the proxy sees that end as the accepted socket's peer), and
 * deletes it when the client socket closes.
 *
 * A connect that never completes (refused, timed out, closed or disconnected in SYN_SENT) never
 * reaches ACTIVE_ESTABLISHED: so state callbacks are asked for already at TCP_CONNECT_CB (the SYN
 * is about to go out, connect4/6 has stored the record), and the move to TCP_CLOSE deletes the
 * cookie-keyed record as well. Only sockets with a record get state callbacks.
 *
 * The close is TCP_CLOSE of the client socket, which comes after the proxy closed its side or
 * after a reset: the record outlives anything the proxy could still ask about.
 *
 * AF_INET6 sockets carry either kind: a dual-stack socket redirected to the v4-mapped listener
 * runs over IPv4 (local_ip4 holds its address, record in the v4 maps); a native IPv6 one was sent
 * to [::1] (record in the v6 maps). Only sockets with a record are touched.
 */
#include "maps.h"
#include <bpf/bpf_endian.h>

static __always_inline void nm_established(struct bpf_sock_ops *skops)
{
	__u64 cookie = bpf_get_socket_cookie(skops);
	struct nm_orig_dst *orig = bpf_map_lookup_elem(&nm_orig_by_cookie, &cookie);
	if (orig) {
		struct nm_peer_key key = {
			.netns = orig->netns,
			.ip4 = skops->local_ip4,
			.port = (__u16)skops->local_port,
		};
		struct nm_orig_dst value = *orig;
		bpf_map_update_elem(&nm_orig_by_peer, &key, &value, BPF_ANY);
		bpf_map_delete_elem(&nm_orig_by_cookie, &cookie);
		bpf_sock_ops_cb_flags_set(skops, BPF_SOCK_OPS_STATE_CB_FLAG);
		return;
	}
	if (skops->family != 10 /* AF_INET6 */)
		return;
	struct nm_orig_dst6 *orig6 = bpf_map_lookup_elem(&nm_orig6_by_cookie, &cookie);
	if (!orig6)
		return;
	struct nm_peer_key6 key6 = {
		.netns = orig6->netns,
		.ip6 = {skops->local_ip6[0], skops->local_ip6[1], skops->local_ip6[2],
			skops->local_ip6[3]},
		.port = (__u16)skops->local_port,
	};
	struct nm_orig_dst6 value6 = *orig6;
	bpf_map_update_elem(&nm_orig6_by_peer, &key6, &value6, BPF_ANY);
	bpf_map_delete_elem(&nm_orig6_by_cookie, &cookie);
	bpf_sock_ops_cb_flags_set(skops, BPF_SOCK_OPS_STATE_CB_FLAG);
}

/* The SYN is about to be sent: a redirected socket (it has a record) gets state callbacks from now
 * on, so that a handshake that fails still ends in nm_closed. */
static __always_inline void nm_connecting(struct bpf_sock_ops *skops)
{
	__u64 cookie = bpf_get_socket_cookie(skops);
	if (bpf_map_lookup_elem(&nm_orig_by_cookie, &cookie) ||
	    (skops->family == 10 /* AF_INET6 */ &&
	     bpf_map_lookup_elem(&nm_orig6_by_cookie, &cookie)))
		bpf_sock_ops_cb_flags_set(skops, BPF_SOCK_OPS_STATE_CB_FLAG);
}

static __always_inline void nm_closed(struct bpf_sock_ops *skops)
{
	/* Left only by a connect that never got established (established moves it). */
	__u64 cookie = bpf_get_socket_cookie(skops);
	bpf_map_delete_elem(&nm_orig_by_cookie, &cookie);
	if (skops->family == 10 /* AF_INET6 */)
		bpf_map_delete_elem(&nm_orig6_by_cookie, &cookie);
	__u64 netns = bpf_get_netns_cookie(skops);
	struct nm_peer_key key = {
		.netns = netns,
		.ip4 = skops->local_ip4,
		.port = (__u16)skops->local_port,
	};
	bpf_map_delete_elem(&nm_orig_by_peer, &key);
	if (skops->family != 10 /* AF_INET6 */)
		return;
	struct nm_peer_key6 key6 = {
		.netns = netns,
		.ip6 = {skops->local_ip6[0], skops->local_ip6[1], skops->local_ip6[2],
			skops->local_ip6[3]},
		.port = (__u16)skops->local_port,
	};
	bpf_map_delete_elem(&nm_orig6_by_peer, &key6);
}

SEC("sockops")
int nm_sockops(struct bpf_sock_ops *skops)
{
	if (skops->family != 2 /* AF_INET */ && skops->family != 10 /* AF_INET6 */)
		return 1;
	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		nm_connecting(skops);
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		nm_established(skops);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (skops->args[1] == BPF_TCP_CLOSE)
			nm_closed(skops);
		break;
	default:
		break;
	}
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
