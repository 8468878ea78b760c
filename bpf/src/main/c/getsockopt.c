/* cgroup/getsockopt: answers getsockopt(SOL_IP, SO_ORIGINAL_DST) and, for native IPv6,
 * getsockopt(SOL_IPV6, IP6T_SO_ORIGINAL_DST) on a socket the proxy accepted from a redirected
 * connect, so the proxy reads the original destination the same way in
 * iptables and eBPF modes. Every other option, and sockets without a record, keep the kernel's
 * own answer.
 *
 * Runs for sockets whose cgroup has it attached: an accepted socket belongs to the cgroup of
 * the process that created the listener, so attach it where the proxy runs as well.
 */
#include "maps.h"
#include <bpf/bpf_endian.h>
#include <linux/in.h>
#include <linux/in6.h>

#define AF_INET 2
#define AF_INET6 10
#define SOL_IP 0
#define SOL_IPV6 41
#define SO_ORIGINAL_DST 80 /* same value as IP6T_SO_ORIGINAL_DST */

/* IP6T_SO_ORIGINAL_DST at SOL_IPV6: a native IPv6 connect that connect6 sent to [::1]. */
static __always_inline int nm_original6(struct bpf_sockopt *ctx, struct bpf_sock *sk)
{
	struct nm_peer_key6 key = {
		.netns = bpf_get_netns_cookie(ctx),
		.ip6 = {sk->dst_ip6[0], sk->dst_ip6[1], sk->dst_ip6[2], sk->dst_ip6[3]},
		.port = bpf_ntohs((__u16)sk->dst_port),
	};
	struct nm_orig_dst6 *orig = bpf_map_lookup_elem(&nm_orig6_by_peer, &key);
	if (!orig)
		return 1;
	struct sockaddr_in6 *sa = ctx->optval;
	if ((void *)(sa + 1) > ctx->optval_end)
		return 1; /* the caller's buffer is smaller than a sockaddr_in6 */
	sa->sin6_family = AF_INET6;
	sa->sin6_port = orig->port;
	sa->sin6_flowinfo = 0;
	sa->sin6_addr.in6_u.u6_addr32[0] = orig->ip6[0];
	sa->sin6_addr.in6_u.u6_addr32[1] = orig->ip6[1];
	sa->sin6_addr.in6_u.u6_addr32[2] = orig->ip6[2];
	sa->sin6_addr.in6_u.u6_addr32[3] = orig->ip6[3];
	sa->sin6_scope_id = 0;
	ctx->optlen = sizeof(*sa);
	asm volatile("" ::: "memory"); /* see nm_getsockopt */
	ctx->retval = 0;
	return 1;
}

SEC("cgroup/getsockopt")
int nm_getsockopt(struct bpf_sockopt *ctx)
{
	if (ctx->optname != SO_ORIGINAL_DST)
		return 1;
	struct bpf_sock *sk = ctx->sk;
	if (!sk)
		return 1;
	if (ctx->level == SOL_IPV6) {
		if (sk->family != AF_INET6)
			return 1;
		return nm_original6(ctx, sk);
	}
	if (ctx->level != SOL_IP || sk->family != AF_INET)
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
	sa->sin_family = AF_INET;
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
