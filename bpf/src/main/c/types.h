/* Structs shared between the BPF programs and their Java mirrors (dev.nodemesh.bpf.maps).
 *
 * Every struct has explicit padding and no implicit holes, so its layout is the same for clang's
 * BPF target and for the ByteBuffer mirrors. MapLayoutTest checks the mirrors against the BTF
 * of the compiled objects; an offset marked "fixed" is read by the node proxy (or by a pinned map
 * that survives a proxy upgrade) and must not move. Add fields at the end, in the padding.
 */
#ifndef NODEMESH_TYPES_H
#define NODEMESH_TYPES_H

#include <linux/types.h>

/* Value of nm_pod_netns (key: netns cookie, __u64): what a registered pod namespace wants. */
struct nm_pod_config {
	__u16 outbound_port; /* offset 0, fixed: host order, the in-pod outbound listener (15001) */
	__u16 flags;         /* offset 2, fixed: NM_POD_* bits */
	__u32 proxy_mark;    /* offset 4, fixed: SO_MARK of the proxy's own sockets (0x539) */
};                           /* size 8 */

/* nm_pod_config.flags: the proxy also listens on [::1]:outbound_port in this pod, so native IPv6
 * connects can be redirected (connect6). Without it they are left alone. */
#define NM_POD_IPV6 1

/* Where a redirected connect meant to go. */
struct nm_orig_dst {
	__u32 ip4;     /* offset 0, fixed: network order */
	__u16 port;    /* offset 4, fixed: network order, as in sockaddr_in */
	__u16 pad0;    /* offset 6 */
	__u64 netns;   /* offset 8, fixed: netns cookie of the connecting socket */
};                     /* size 16 */

/* Key of nm_orig_by_peer: the client end of a redirected connection, as the proxy sees it as the
 * peer of the accepted socket in the same namespace. */
struct nm_peer_key {
	__u64 netns;   /* offset 0, fixed: netns cookie */
	__u32 ip4;     /* offset 8, fixed: client address, network order */
	__u16 port;    /* offset 12, fixed: client port, host order */
	__u16 pad0;    /* offset 14: always zero, it is hashed */
};                     /* size 16 */

/* Where a redirected native-IPv6 connect meant to go (nm_orig6_* maps). */
struct nm_orig_dst6 {
	__u32 ip6[4];  /* offset 0, fixed: network order */
	__u16 port;    /* offset 16, fixed: network order, as in sockaddr_in6 */
	__u16 pad0;    /* offset 18 */
	__u32 pad1;    /* offset 20 */
	__u64 netns;   /* offset 24, fixed: netns cookie of the connecting socket */
};                     /* size 32 */

/* Key of nm_orig6_by_peer: the client end ([::1]:port) of a redirected IPv6 connection. */
struct nm_peer_key6 {
	__u64 netns;   /* offset 0, fixed: netns cookie */
	__u32 ip6[4];  /* offset 8, fixed: client address, network order */
	__u16 port;    /* offset 24, fixed: client port, host order */
	__u16 pad0;    /* offset 26: always zero, it is hashed */
	__u32 pad1;    /* offset 28: always zero, it is hashed */
};                     /* size 32 */

/* Key of nm_inbound_pods and nm_inbound_listener: a pod address as the kernel sees it as the local
 * address of an arriving connection. IPv4 is stored v4-mapped (::ffff:a.b.c.d), so one key type
 * serves both families. */
struct nm_inbound_key {
	__u32 addr[4]; /* offset 0, fixed: network order; IPv4 as ::ffff:a.b.c.d */
};                     /* size 16 */

/* Value of nm_inbound_pods: what a registered pod's inbound capture leaves alone. */
#define NM_INBOUND_EXCLUDE 8
struct nm_inbound_config {
	__u16 exclude_ports[NM_INBOUND_EXCLUDE]; /* offset 0, fixed: host order, 0 = unused slot;
						  * slot 0 is the HBONE port (15008) */
};                                               /* size 16 */

/* Key of nm_skmsg_socks (the optional sk_msg shortcut): one end of a connection between a pod's
 * app socket and the proxy's accepted socket on the in-pod outbound listener, as that socket sees
 * itself. The peer's key is the same with local and remote swapped. */
struct nm_sock_key {
	__u64 netns;       /* offset 0, fixed: netns cookie */
	__u32 local_ip4;   /* offset 8, fixed: network order */
	__u32 remote_ip4;  /* offset 12, fixed: network order */
	__u16 local_port;  /* offset 16, fixed: host order */
	__u16 remote_port; /* offset 18, fixed: host order */
	__u32 pad0;        /* offset 20: always zero, it is hashed */
};                         /* size 24 */

#endif
