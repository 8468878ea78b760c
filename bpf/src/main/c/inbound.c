/* sk_lookup: steers TCP connections arriving at a registered pod to the node proxy's in-pod
 * inbound listener (0.0.0.0:15006), the eBPF-mode counterpart of iptables mode's PREROUTING
 * REDIRECT. Attached per pod to the pod's network namespace (bpf_program__attach_netns), so it
 * runs only for packets delivered locally in a registered pod.
 *
 * No packet is rewritten and there is no conntrack: the kernel hands the SYN to the listener
 * chosen here instead of the one bound to the destination port, and the accepted socket's local
 * address is the original destination (getsockname).
 *
 * Left alone (normal socket lookup): anything not TCP; connections arriving over loopback (the
 * pod's own local traffic and the proxy's connects to the app from inside the pod, which is how
 * the proxy's own traffic is recognised: a socket mark does not cross into sk_lookup); addresses
 * not in nm_inbound_pods; the excluded ports (HBONE 15008 and whatever the agent configured).
 * A registered address whose listener is missing (proxy restarting) drops the SYN: the client
 * retransmits and reaches the restarted proxy, it never reaches the app around the mesh.
 */
#include "maps.h"
#include <bpf/bpf_endian.h>
#include <linux/in.h>

#define AF_INET 2
#define AF_INET6 10
#define LOOPBACK_IFINDEX 1

SEC("sk_lookup")
int nm_inbound(struct bpf_sk_lookup *ctx)
{
	if (ctx->protocol != IPPROTO_TCP)
		return SK_PASS;
	if (ctx->ingress_ifindex == LOOPBACK_IFINDEX)
		return SK_PASS;
	struct nm_inbound_key key = {};
	if (ctx->family == AF_INET) {
		if (ctx->remote_ip4 == ctx->local_ip4)
			return SK_PASS;
		key.addr[2] = bpf_htonl(0xffff);
		key.addr[3] = ctx->local_ip4;
	} else if (ctx->family == AF_INET6) {
		/* A connection to the pod's own IPv6 address from inside the pod (the proxy delivering
		 * to the app) is looped back, but IPv6 reports the address's interface (eth0), not lo,
		 * as ingress: recognise it by its source, as for IPv4 above. */
		if (ctx->remote_ip6[0] == ctx->local_ip6[0] &&
		    ctx->remote_ip6[1] == ctx->local_ip6[1] &&
		    ctx->remote_ip6[2] == ctx->local_ip6[2] &&
		    ctx->remote_ip6[3] == ctx->local_ip6[3])
			return SK_PASS;
		key.addr[0] = ctx->local_ip6[0];
		key.addr[1] = ctx->local_ip6[1];
		key.addr[2] = ctx->local_ip6[2];
		key.addr[3] = ctx->local_ip6[3];
	} else {
		return SK_PASS;
	}
	struct nm_inbound_config *pod = bpf_map_lookup_elem(&nm_inbound_pods, &key);
	if (!pod)
		return SK_PASS;
	__u32 port = ctx->local_port;
#pragma unroll
	for (int i = 0; i < NM_INBOUND_EXCLUDE; i++) {
		if (pod->exclude_ports[i] != 0 && pod->exclude_ports[i] == port)
			return SK_PASS;
	}
	struct bpf_sock *sk = bpf_map_lookup_elem(&nm_inbound_listener, &key);
	if (!sk)
		return SK_DROP;
	long err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	return err == 0 ? SK_PASS : SK_DROP;
}

char LICENSE[] SEC("license") = "GPL";
