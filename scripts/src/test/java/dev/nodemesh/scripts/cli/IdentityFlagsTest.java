package dev.nodemesh.scripts.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.control.ca.BootstrapTokens;
import dev.nodemesh.control.ca.CaOptions;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** The CA and identity flags of {@code nodemesh control} and {@code nodemesh proxy}. */
class IdentityFlagsTest {
  @TempDir Path dir;

  private int run(String... args) {
    CommandLine cl = Main.commandLine();
    cl.setOut(new PrintWriter(new StringWriter(), true));
    cl.setErr(new PrintWriter(new StringWriter(), true));
    return cl.execute(args);
  }

  @Test
  void controlBuildsALocalCaFromItsFlags() throws Exception {
    BootstrapTokens.generate(dir.resolve("tokens"), List.of("node-1"));
    CommandLine.ParseResult r =
        Main.commandLine()
            .parseArgs(
                "control",
                "--source",
                "dir:" + dir,
                "--ca-dir",
                dir.resolve("ca").toString(),
                "--bootstrap-tokens",
                dir.resolve("tokens").toString(),
                "--trust-domain",
                "example.org",
                "--cert-ttl",
                "90m",
                "--tls-san",
                "localhost",
                "--tls-san",
                "127.0.0.1");
    ControlCommand c = (ControlCommand) r.subcommand().commandSpec().userObject();
    CaOptions ca = c.makeCa();
    assertNotNull(ca);
    assertEquals("example.org", ca.authority().settings().trustDomain());
    assertEquals(Duration.ofMinutes(90), ca.authority().settings().defaultTtl());
    assertEquals(List.of("localhost", "127.0.0.1"), ca.tlsSans());
    assertTrue(Files.exists(dir.resolve("ca/ca.key")));
  }

  @Test
  void withoutCaFlagsThereIsNoCa() throws Exception {
    CommandLine.ParseResult r = Main.commandLine().parseArgs("control", "--source", "dir:" + dir);
    assertNull(((ControlCommand) r.subcommand().commandSpec().userObject()).makeCa());
  }

  @Test
  void inconsistentCaFlagsAreUsageErrors() {
    String src = "dir:" + dir;
    assertEquals(2, run("control", "--source", src, "--tls-san", "localhost")); // no CA
    assertEquals(2, run("control", "--source", src, "--ca-dir", dir.toString())); // no tokens
    assertEquals(2, run("control", "--source", src, "--cert-ttl", "5x"));
    assertEquals(
        2,
        run("control", "--source", src, "--ca-cert", "c.pem", "--bootstrap-tokens", "t")); // no key
    assertEquals(
        2, run("control", "--source", src, "--ca-dir", "d", "--ca-secret", "s")); // two roots
    // Publishing the root needs a CA, and a cluster to publish it in.
    assertEquals(2, run("control", "--source", src, "--ca-root-configmap", "nodemesh-ca-root"));
    assertEquals(
        2,
        run(
            "control",
            "--source",
            src,
            "--ca-dir",
            dir.resolve("ca").toString(),
            "--bootstrap-tokens",
            "t",
            "--ca-root-configmap",
            "nodemesh-ca-root"));
    assertEquals(2, run("proxy", "--config-dir", "/tmp", "--bootstrap-token-file", "t")); // no CA
    assertEquals(2, run("proxy", "--xds", "127.0.0.1:1", "--ca", "127.0.0.1:2")); // no token
  }

  @Test
  void proxyIdentityFlags() {
    CommandLine.ParseResult r =
        Main.commandLine()
            .parseArgs(
                "proxy",
                "--xds",
                "127.0.0.1:15010",
                "--bootstrap-token-file",
                "/run/n1.token",
                "--ca-root",
                "/run/ca.crt",
                "--trust-domain",
                "example.org",
                "--cert-ttl",
                "2m");
    ProxyCommand p = (ProxyCommand) r.subcommand().commandSpec().userObject();
    assertEquals(Path.of("/run/n1.token"), p.tokenFile);
    assertEquals(Path.of("/run/ca.crt"), p.caRoot);
    assertEquals("example.org", p.trustDomain);
    assertEquals(Duration.ofMinutes(2), p.certTtl);
    assertNull(p.ca, "defaults to the xDS target");
    assertFalse(p.plaintextToken, "the token goes over TLS only unless asked");
    ProxyCommand insecure =
        (ProxyCommand)
            Main.commandLine()
                .parseArgs(
                    "proxy",
                    "--xds",
                    "127.0.0.1:15010",
                    "--bootstrap-token-file",
                    "/run/n1.token",
                    "--insecure-plaintext-token")
                .subcommand()
                .commandSpec()
                .userObject();
    assertTrue(insecure.plaintextToken);
  }
}
