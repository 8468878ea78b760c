package dev.nodemesh.proxy.authz;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import java.net.InetAddress;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Before any config the wrapper refuses; after, every question (including the HBONE server's
 * connection check for a stream that carries HTTP) is the delegate's to answer.
 */
class FailClosedAuthorizerTest {
  private static final Decision L4 = new Decision(true, "l4", "allowed");
  private static final Decision BEFORE_REQUESTS = new Decision(true, "before-requests", "allowed");

  /** Answers each kind of question with its own decision, so a test sees which one was asked. */
  private static final Authorizer DELEGATE =
      new Authorizer() {
        @Override
        public Decision check(ConfigSnapshot s, Workload d, int port, ConnectionSource src) {
          return L4;
        }

        @Override
        public Decision checkBeforeRequests(
            ConfigSnapshot s, Workload d, int port, ConnectionSource src) {
          return BEFORE_REQUESTS;
        }
      };

  @Test
  void refusesWithoutConfigAndPassesEveryQuestionOnAfterwards() throws Exception {
    Workload pod =
        new Workload(
            "u1",
            "echo-1",
            "default",
            List.of(InetAddress.getByName("10.1.0.1")),
            Map.of(),
            "echo",
            "node-1",
            Map.of());
    ConnectionSource caller = new ConnectionSource(null, InetAddress.getByName("10.1.0.2"), false);
    FailClosedAuthorizer a = new FailClosedAuthorizer(DELEGATE);
    ConfigSnapshot none = ConfigSnapshot.empty();
    assertEquals(FailClosedAuthorizer.REASON, a.check(none, pod, 80, caller).reason());
    assertEquals(
        FailClosedAuthorizer.REASON, a.checkBeforeRequests(none, pod, 80, caller).reason());
    ConfigSnapshot some = ConfigSnapshot.empty().withVersion(1);
    assertEquals(L4, a.check(some, pod, 80, caller));
    assertEquals(BEFORE_REQUESTS, a.checkBeforeRequests(some, pod, 80, caller));
  }
}
