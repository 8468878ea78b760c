package dev.nodemesh.model.admin;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.BindException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The sockets an admin server listens on: the configured address, and 127.0.0.1 on the same port
 * when that address is neither loopback nor the wildcard. The manifests bind the admin to the pod
 * (or node) IP, but {@code kubectl port-forward} and {@code kubectl exec ... curl 127.0.0.1} arrive
 * on loopback, and {@link LoggingEndpoint} accepts level changes only from there. Shared by the
 * node proxy's {@link AdminServer} and the control plane's admin.
 */
public final class AdminListeners {
  private static final Logger log = LoggerFactory.getLogger(AdminListeners.class);

  private AdminListeners() {}

  /**
   * Binds (does not start) the listeners; the first is on {@code address}. A loopback port already
   * taken by something else is logged and skipped: the admin still serves on {@code address}.
   */
  public static List<HttpServer> bind(InetSocketAddress address) throws IOException {
    List<HttpServer> out = new ArrayList<>();
    HttpServer primary = HttpServer.create(address, 64);
    out.add(primary);
    InetAddress ip = address.getAddress();
    if (ip != null && !ip.isLoopbackAddress() && !ip.isAnyLocalAddress()) {
      InetSocketAddress loopback =
          new InetSocketAddress(InetAddress.getLoopbackAddress(), primary.getAddress().getPort());
      try {
        out.add(HttpServer.create(loopback, 64));
      } catch (BindException e) {
        log.warn(
            "admin: {} is taken, serving on {} only (log level changes need a loopback peer)",
            loopback,
            primary.getAddress());
      }
    }
    return out;
  }
}
