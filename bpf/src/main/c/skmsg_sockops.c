/* sockops half of the optional sk_msg shortcut (loaded always, attached only with
 * --ebpf-sk-msg): puts both ends of a connection between a registered pod's socket and the proxy's
 * in-pod outbound listener (127.0.0.1:<outbound_port>) into nm_skmsg_socks, keyed by how each end
 * sees itself, so nm_skmsg can find the peer.
 *
 * The app end is seen at ACTIVE_ESTABLISHED (its process is in the attached cgroup); the proxy end
 * at PASSIVE_ESTABLISHED only if the proxy's listener was created by a process in the attached
 * cgroup (a node proxy running as a pod under the pod cgroup root). Otherwise only the app end is
 * added and nothing is shortcut. Entries leave the map by themselves when the socket closes.
 */
#include "maps.h"
#include <bpf/bpf_endian.h>

#define NM_LOOPBACK 0x0100007f /* 127.0.0.1 in network order, as read on little-endian */

SEC("sockops")
int nm_skmsg_sockops(struct bpf_sock_ops *skops)
{
	if (skops->family != 2 /* AF_INET */)
		return 1;
	if (skops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB &&
	    skops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 1;
	__u64 netns = bpf_get_netns_cookie(skops);
	struct nm_pod_config *pod = bpf_map_lookup_elem(&nm_pod_netns, &netns);
	if (!pod)
		return 1;
	struct nm_sock_key key = {
		.netns = netns,
		.local_ip4 = skops->local_ip4,
		.remote_ip4 = skops->remote_ip4,
		.local_port = (__u16)skops->local_port,
		.remote_port = (__u16)bpf_ntohl(skops->remote_port),
	};
	/* the listener side of the pair is always 127.0.0.1:<outbound_port> */
	int active = skops->op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB;
	__u32 listener_ip = active ? key.remote_ip4 : key.local_ip4;
	__u16 listener_port = active ? key.remote_port : key.local_port;
	if (listener_ip != NM_LOOPBACK || listener_port != pod->outbound_port)
		return 1;
	bpf_sock_hash_update(skops, &nm_skmsg_socks, &key, BPF_ANY);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
