package dev.nodemesh.scripts.local;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.nodemesh.scripts.local.Manifest.AppSpec;
import dev.nodemesh.scripts.local.Manifest.PodSpec;
import dev.nodemesh.scripts.local.Manifest.ServiceSpec;
import java.util.List;
import org.junit.jupiter.api.Test;

class HostsFileTest {
  @Test
  void listsLocalhostEveryServiceFormAndEveryPod() {
    Manifest m =
        new Manifest(
            List.of(
                new PodSpec("client", "default", "u1", "10.213.0.10", new AppSpec.None()),
                new PodSpec(
                    "echo-1", "default", "u2", "10.213.0.11", new AppSpec.SampleApp(8080, 9000))),
            List.of(
                new ServiceSpec("echo", "default", "10.96.0.10"),
                new ServiceSpec("cart", "shop", "10.96.0.20")));
    assertEquals(
        """
        # written by nodemesh local up; removed by nodemesh local down
        127.0.0.1\tlocalhost
        10.96.0.10\techo echo.default echo.default.svc.cluster.local
        10.96.0.20\tcart cart.shop cart.shop.svc.cluster.local
        10.213.0.10\tclient
        10.213.0.11\techo-1
        """,
        HostsFile.render(m));
  }

  @Test
  void emptyManifestStillResolvesLocalhost() {
    assertEquals(
        "# written by nodemesh local up; removed by nodemesh local down\n127.0.0.1\tlocalhost\n",
        HostsFile.render(new Manifest(List.of(), List.of())));
  }
}
