package dev.nodemesh.bpf.loader;

import static dev.nodemesh.bpf.loader.InterceptionPrograms.ORIG6_BY_PEER;
import static dev.nodemesh.bpf.loader.InterceptionPrograms.ORIG_BY_PEER;
import static dev.nodemesh.bpf.loader.InterceptionPrograms.POD_NETNS;

import dev.nodemesh.bpf.ffi.Bpf;
import dev.nodemesh.bpf.ffi.BpfException;
import dev.nodemesh.bpf.maps.OrigDst;
import dev.nodemesh.bpf.maps.OrigDst6;
import dev.nodemesh.bpf.maps.PeerKey;
import dev.nodemesh.bpf.maps.PeerKey6;
import dev.nodemesh.bpf.maps.PodConfig;
import java.net.Inet6Address;
import java.net.InetSocketAddress;
import java.util.Optional;

/**
 * The outbound side's maps: which pod namespaces connect4/connect6 redirect ({@link
 * InterceptionPrograms#POD_NETNS}), and the original destinations the programs record for the proxy
 * to read back by the accepted socket's peer. Safe from any thread; every call throws {@link
 * IllegalStateException} once the handles are closed.
 */
final class OutboundMaps {
  private final ObjectHandles handles;

  OutboundMaps(ObjectHandles handles) {
    this.handles = handles;
  }

  void register(long netnsCookie, PodConfig config) throws BpfException {
    handles.whileOpen(
        () -> {
          Bpf.update(
              handles.mapFd(POD_NETNS), PodConfig.key(netnsCookie), config.encode(), POD_NETNS);
          return true;
        });
  }

  boolean unregister(long netnsCookie) throws BpfException {
    return handles.whileOpen(
        () -> Bpf.delete(handles.mapFd(POD_NETNS), PodConfig.key(netnsCookie), POD_NETNS));
  }

  Optional<PodConfig> registration(long netnsCookie) throws BpfException {
    return handles.whileOpen(
        () -> {
          byte[] v =
              Bpf.lookup(
                  handles.mapFd(POD_NETNS), PodConfig.key(netnsCookie), PodConfig.SIZE, POD_NETNS);
          return v == null ? Optional.empty() : Optional.of(PodConfig.decode(v));
        });
  }

  Optional<InetSocketAddress> originalDestination(long netnsCookie, InetSocketAddress peer)
      throws BpfException {
    return handles.whileOpen(
        () -> {
          if (peer.getAddress() instanceof Inet6Address) {
            byte[] v6 =
                Bpf.lookup(
                    handles.mapFd(ORIG6_BY_PEER),
                    new PeerKey6(netnsCookie, peer).encode(),
                    OrigDst6.SIZE,
                    ORIG6_BY_PEER);
            return v6 == null ? Optional.empty() : Optional.of(OrigDst6.decode(v6).destination());
          }
          byte[] v =
              Bpf.lookup(
                  handles.mapFd(ORIG_BY_PEER),
                  new PeerKey(netnsCookie, peer).encode(),
                  OrigDst.SIZE,
                  ORIG_BY_PEER);
          return v == null ? Optional.empty() : Optional.of(OrigDst.decode(v).destination());
        });
  }
}
