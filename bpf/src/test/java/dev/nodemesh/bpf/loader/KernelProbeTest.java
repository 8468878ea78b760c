package dev.nodemesh.bpf.loader;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.loader.KernelProbe.Mount;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The path checks of the probe, over a made-up mount table (no root, no kernel needed). */
class KernelProbeTest {
  @TempDir Path tmp;

  private List<Mount> mounts(String... lines) {
    return Mount.parse(List.of(lines));
  }

  @Test
  void aCgroupOnACgroup2MountPassesAndTheDeepestMountDecides() throws IOException {
    Path real = tmp.toRealPath();
    Path cg = Files.createDirectories(real.resolve("pods"));
    List<Mount> table =
        mounts("/dev/sda1 / ext4 rw 0 0", "cgroup2 " + real + " cgroup2 rw,nosuid 0 0");
    assertEquals(Optional.empty(), KernelProbe.checkCgroup(cg, table));
    // The same directory under a v1 controller mount is refused, naming what it is on.
    List<Mount> v1 = mounts("/dev/sda1 / ext4 rw 0 0", "cgroup " + real + " cgroup rw,cpu 0 0");
    assertEquals(
        Optional.of(
            "attach cgroup " + cg + " is not on a cgroup2 mount (it is on cgroup at " + real + ")"),
        KernelProbe.checkCgroup(cg, v1));
  }

  @Test
  void aMissingCgroupIsRefused() {
    Path missing = tmp.resolve("nope");
    assertEquals(
        Optional.of("attach cgroup " + missing + " is not a directory"),
        KernelProbe.checkCgroup(missing, mounts("cgroup2 / cgroup2 rw 0 0")));
  }

  @Test
  void aPinDirIsCheckedAtItsNearestExistingParent() throws IOException {
    Path real = tmp.toRealPath();
    Path pins = real.resolve("nodemesh/pins"); // does not exist yet: install creates it
    assertEquals(
        Optional.empty(),
        KernelProbe.checkPinDir(
            pins, mounts("/dev/sda1 / ext4 rw 0 0", "bpf " + real + " bpf rw 0 0")));
    Optional<String> why = KernelProbe.checkPinDir(pins, mounts("/dev/sda1 / ext4 rw 0 0"));
    assertTrue(why.isPresent());
    assertTrue(why.get().contains("is not on a bpffs (it is on ext4 at /)"), why.get());
    assertTrue(why.get().endsWith("mount -t bpf bpf " + real), why.get());
  }

  @Test
  void escapedMountPointsAreDecoded() {
    List<Mount> m = mounts("none /run/my\\040dir bpf rw 0 0");
    assertEquals(Path.of("/run/my dir"), m.get(0).dir());
  }

  @Test
  void probeResultsForTests() {
    assertTrue(KernelProbe.ok().available());
    KernelProbe no = KernelProbe.unavailable("no BTF", "no cgroup2 mounted");
    assertFalse(no.available());
    assertEquals("eBPF unavailable: no BTF; no cgroup2 mounted", no.toString());
    assertThrows(IllegalArgumentException.class, KernelProbe::unavailable);
  }
}
