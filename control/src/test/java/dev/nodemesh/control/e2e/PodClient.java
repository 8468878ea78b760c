package dev.nodemesh.control.e2e;

import dev.nodemesh.proxy.testing.TestNode;
import java.io.IOException;

/**
 * One TCP connection from a pod's own process (python, run by {@link TestNode#podExec}, so in eBPF
 * mode it is inside the intercepted cgroup too, which no socket of the test JVM is): connects,
 * sends a line, and reports what came back as one word, for tests that run in both interception
 * modes.
 */
final class PodClient {
  private static final String SCRIPT =
      "import socket,sys\n"
          + "ip,port,sport,t=sys.argv[1],int(sys.argv[2]),int(sys.argv[3]),float(sys.argv[4])\n"
          + "s=socket.socket(socket.AF_INET6 if ':' in ip else socket.AF_INET)\n"
          + "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
          + "if sport: s.bind(('',sport))\n"
          + "s.settimeout(t)\n"
          + "try:\n"
          + "  s.connect((ip,port)); s.sendall(b'hello\\n'); d=s.recv(1024)\n"
          + "  print('data:'+d.decode(errors='replace').split('\\n')[0] if d else 'eof')\n"
          + "except socket.timeout: print('timeout')\n"
          + "except (ConnectionResetError,BrokenPipeError): print('reset')\n"
          + "except OSError as e: print('error:%d' % (e.errno or 0))\n";

  private PodClient() {}

  /**
   * Connects from {@code pod} to {@code ip:port} (from source port {@code sport} when not 0, with a
   * timeout of {@code timeoutSeconds}); returns {@code data:<first line>}, {@code eof}, {@code
   * reset}, {@code timeout} or {@code error:<errno>}.
   */
  static String connect(
      TestNode node, String pod, String ip, int port, int sport, double timeoutSeconds)
      throws IOException {
    return node.podExec(
            pod,
            "python3",
            "-c",
            SCRIPT,
            ip,
            Integer.toString(port),
            Integer.toString(sport),
            Double.toString(timeoutSeconds))
        .strip();
  }

  /** {@link #connect} from any source port, 10 s timeout. */
  static String connect(TestNode node, String pod, String ip, int port) throws IOException {
    return connect(node, pod, ip, port, 0, 10);
  }

  /** Whether an outcome is a refusal: accepted by the proxy's listener and reset, no data. */
  static boolean refused(String outcome) {
    return outcome.equals("reset") || outcome.equals("eof");
  }
}
