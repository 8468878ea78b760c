package dev.nodemesh.scripts.local;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.scripts.local.Manifest.AppSpec;
import dev.nodemesh.scripts.local.Manifest.PodSpec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ManifestTest {
  static Path basic() {
    return Path.of("src/test/resources/local/basic").toAbsolutePath();
  }

  @Test
  void readsPodsAndServicesOfTheBasicExample() throws IOException {
    Manifest m = Manifest.read(basic());
    assertEquals(
        List.of("client", "echo-1", "echo-2", "echo-3"),
        m.pods().stream().map(PodSpec::name).toList());
    PodSpec echo2 = m.pods().get(2);
    assertEquals("10.213.0.12", echo2.ip());
    assertEquals("default", echo2.namespace());
    assertEquals(new AppSpec.SampleApp(8080, 9000), echo2.app());
    assertEquals(new AppSpec.None(), m.pods().get(0).app());
    assertEquals(1, m.services().size());
    assertEquals("10.96.0.10", m.services().get(0).clusterIp());
    // No uid in the YAML: a stable one is derived, so re-enrolment is a no-op for the agent.
    assertEquals(echo2.uid(), Manifest.read(basic()).pods().get(2).uid());
  }

  @Test
  void containerCommandBecomesTheApp(@TempDir Path dir) throws IOException {
    Files.writeString(
        dir.resolve("p.yaml"),
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: web, namespace: shop, uid: abc}
        spec:
          containers:
            - name: web
              image: nginx
              command: [nginx]
              args: ["-g", "daemon off;"]
        status: {podIP: 10.213.0.20}
        """);
    PodSpec p = Manifest.read(dir).pods().get(0);
    assertEquals(new AppSpec.Command(List.of("nginx", "-g", "daemon off;")), p.app());
    assertEquals("abc", p.uid());
  }

  @Test
  void aPodWithoutIpIsRejectedWithItsName(@TempDir Path dir) throws IOException {
    Files.writeString(
        dir.resolve("p.yaml"), "apiVersion: v1\nkind: Pod\nmetadata: {name: lost}\nspec: {}\n");
    IOException e = assertThrows(IOException.class, () -> Manifest.read(dir));
    assertTrue(e.getMessage().contains("lost"), e.getMessage());
  }
}
