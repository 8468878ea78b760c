/* Every map the programs share, declared once. Sizes are entries, not bytes:
 *
 * nm_pod_netns     HASH      4096  registered pod namespaces (one per pod on the node), written by
 *                                  the node agent; a namespace not in it is never touched.
 * nm_orig_by_cookie LRU_HASH 65536 connect4 -> sockops hand-off, keyed by socket cookie; lives
 *                                  for one handshake, deleted on ACTIVE_ESTABLISHED, or at
 *                                  TCP_CLOSE when the handshake fails. LRU so that a connect that
 *                                  fails before its SYN (no sockops callback) cannot fill it.
 * nm_orig_by_peer  LRU_HASH 65536  the record the proxy (or cgroup/getsockopt) reads, keyed by
 *                                  the client end; deleted when the client socket reaches
 *                                  TCP_CLOSE. 65536 covers every ephemeral port of ~2 pods at
 *                                  once; LRU evicts the oldest if a close is ever missed.
 * 16 + 8 + 8 bytes per entry plus hash overhead: ~10 MiB locked for both LRU maps.
 *
 * nm_orig6_by_cookie, nm_orig6_by_peer  LRU_HASH 16384 each: the same two steps for native IPv6
 *                                  destinations redirected to [::1] (32-byte keys/values).
 *
 * nm_inbound_pods  HASH      8192  pod address -> inbound config (excluded ports), one entry per
 *                                  address of a registered pod (4096 pods, dual stack); written by
 *                                  the node agent, removed at pod delete.
 * nm_inbound_listener SOCKHASH 8192 pod address -> the proxy's in-pod 15006 listening socket. The
 *                                  kernel removes an entry by itself when the socket closes (proxy
 *                                  stopped); the agent puts it back when it re-enrols the pod.
 * nm_skmsg_socks   SOCKHASH 32768  (only with the sk_msg shortcut) both ends of every established
 *                                  connection between a pod socket and the proxy's in-pod outbound
 *                                  listener (16384 connections at once), added by
 *                                  nm_skmsg_sockops; the kernel removes a socket when it closes.
 *                                  A connection that does not fit is simply not shortcut.
 * nm_skmsg_tcp     SK_STORAGE      per socket: 1 once nm_skmsg let a sendmsg go over TCP (the
 *                                  socket then stays on TCP); freed with the socket.
 */
#ifndef NODEMESH_MAPS_H
#define NODEMESH_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "types.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct nm_pod_config);
} nm_pod_netns SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct nm_orig_dst);
} nm_orig_by_cookie SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct nm_peer_key);
	__type(value, struct nm_orig_dst);
} nm_orig_by_peer SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct nm_orig_dst6);
} nm_orig6_by_cookie SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct nm_peer_key6);
	__type(value, struct nm_orig_dst6);
} nm_orig6_by_peer SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct nm_inbound_key);
	__type(value, struct nm_inbound_config);
} nm_inbound_pods SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 8192);
	__type(key, struct nm_inbound_key);
	__type(value, __u64);
} nm_inbound_listener SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 32768);
	__type(key, struct nm_sock_key);
	__type(value, __u64);
} nm_skmsg_socks SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u32);
} nm_skmsg_tcp SEC(".maps") __weak;

#endif
