/* cgroup/getsockopt: answers getsockopt(SOL_IP, SO_ORIGINAL_DST) on a socket the proxy accepted
 * from a redirected connect, so the proxy reads the original destination the same way in
 * iptables and eBPF modes. Every other option, and sockets without a record, keep the kernel's
 * own answer.
 *
 * Runs for sockets whose cgroup has it attached: an accepted socket belongs to the cgroup of
 * the process that created the listener, so attach it where the proxy runs as well.
 */
#include "maps.h"
#include <bpf/bpf_endian.h>
#include <linux/in.h>

#define SOL_IP 0
#define SO_ORIGINAL_DST 80

SEC("cgroup/getsockopt")
int nm_getsockopt(struct bpf_sockopt *ctx)
{
	if (ctx->level != SOL_IP || ctx->optname != SO_ORIGINAL_DST)
		return 1;
	struct bpf_sock *sk = ctx->sk;
	if (!sk || sk->family != 2 /* AF_INET */)
		return 1;
	struct nm_peer_key key = {
		.netns = bpf_get_netns_cookie(ctx),
		.ip4 = sk->dst_ip4,
		.port = bpf_ntohs((__u16)sk->dst_port),
	};
	struct nm_orig_dst *orig = bpf_map_lookup_elem(&nm_orig_by_peer, &key);
	if (!orig)
		return 1;
	struct sockaddr_in *sa = ctx->optval;
	if ((void *)(sa + 1) > ctx->optval_end)
		return 1; /* the caller's buffer is smaller than a sockaddr_in */
	sa->sin_family = 2; /* AF_INET */
	sa->sin_port = orig->port;
	sa->sin_addr.s_addr = orig->ip4;
	__builtin_memset(sa->sin_zero, 0, sizeof(sa->sin_zero));
	ctx->optlen = sizeof(*sa);
	/* Without this barrier clang merges the two stores into one 8-byte store that the verifier
	 * rejects (invalid bpf_context access off=32 size=8). */
	asm volatile("" ::: "memory");
	ctx->retval = 0;
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
