/* sockops: moves connect4's record from the socket cookie to the client end of the connection
 * once it is established (the proxy sees that end as the accepted socket's peer), and deletes
 * it when the client socket closes.
 *
 * The close is TCP_CLOSE of the client socket, which comes after the proxy closed its side or
 * after a reset: the record outlives anything the proxy could still ask about.
 */
#include "maps.h"
#include <bpf/bpf_endian.h>

SEC("sockops")
int nm_sockops(struct bpf_sock_ops *skops)
{
	/* AF_INET6 too: a dual-stack socket redirected by connect6 to the v4-mapped listener runs
	 * over IPv4, and local_ip4 holds its IPv4 address. Only sockets with a record are touched. */
	if (skops->family != 2 /* AF_INET */ && skops->family != 10 /* AF_INET6 */)
		return 1;
	switch (skops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB: {
		__u64 cookie = bpf_get_socket_cookie(skops);
		struct nm_orig_dst *orig = bpf_map_lookup_elem(&nm_orig_by_cookie, &cookie);
		if (!orig)
			return 1;
		struct nm_peer_key key = {
			.netns = orig->netns,
			.ip4 = skops->local_ip4,
			.port = (__u16)skops->local_port,
		};
		struct nm_orig_dst value = *orig;
		bpf_map_update_elem(&nm_orig_by_peer, &key, &value, BPF_ANY);
		bpf_map_delete_elem(&nm_orig_by_cookie, &cookie);
		bpf_sock_ops_cb_flags_set(skops, BPF_SOCK_OPS_STATE_CB_FLAG);
		break;
	}
	case BPF_SOCK_OPS_STATE_CB: {
		if (skops->args[1] != BPF_TCP_CLOSE)
			return 1;
		struct nm_peer_key key = {
			.netns = bpf_get_netns_cookie(skops),
			.ip4 = skops->local_ip4,
			.port = (__u16)skops->local_port,
		};
		bpf_map_delete_elem(&nm_orig_by_peer, &key);
		break;
	}
	default:
		break;
	}
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
