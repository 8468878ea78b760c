/* sk_msg half of the optional shortcut (attached to nm_skmsg_socks only with --ebpf-sk-msg):
 * runs on every sendmsg of a socket in that map and hands the bytes straight to the peer's
 * receive queue (bpf_msg_redirect_hash with BPF_F_INGRESS), skipping the loopback TCP stack.
 *
 * Ordering: the peer reads redirected bytes before bytes that came over TCP, so a sending socket
 * that once sent over TCP stays on TCP for good: the first sendmsg whose peer is not in the map
 * (the helper fails, the bytes go over TCP as usual with SK_PASS) marks the socket in
 * nm_skmsg_tcp, and a marked socket is never redirected. This happens when the app writes before
 * the proxy's end of the handshake has run, or the proxy end is outside the attached cgroup.
 */
#include "maps.h"
#include <bpf/bpf_endian.h>

SEC("sk_msg")
int nm_skmsg(struct sk_msg_md *msg)
{
	if (msg->family != 2 /* AF_INET */)
		return SK_PASS;
	struct bpf_sock *sk = msg->sk;
	if (!sk)
		return SK_PASS;
	__u32 *on_tcp = bpf_sk_storage_get(&nm_skmsg_tcp, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!on_tcp || *on_tcp)
		return SK_PASS;
	struct nm_sock_key peer = {
		.netns = bpf_get_netns_cookie(msg),
		.local_ip4 = msg->remote_ip4,
		.remote_ip4 = msg->local_ip4,
		.local_port = (__u16)bpf_ntohl(msg->remote_port),
		.remote_port = (__u16)msg->local_port,
	};
	if (bpf_msg_redirect_hash(msg, &nm_skmsg_socks, &peer, BPF_F_INGRESS) != SK_PASS)
		*on_tcp = 1;
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
