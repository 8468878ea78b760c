package dev.nodemesh.scripts.local;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Local mode's proxy AOT cache: when it is used, trained, left out, and how it is put in place. */
class ProxyAotCacheTest {
  @TempDir Path dir;

  private Path file(String name, long mtimeMillis) throws IOException {
    Path p = dir.resolve(name);
    Files.writeString(p, name);
    Files.setLastModifiedTime(p, FileTime.fromMillis(mtimeMillis));
    return p;
  }

  @Test
  void onlyAClassPathOfJarsOnJdk25OrLaterHasACacheBesideItsFirstJar() throws IOException {
    Path a = file("nodemesh.jar", 1000);
    Path b = file("lib.jar", 1000);
    String cp = a + ":" + b;
    assertEquals(
        Optional.of(dir.resolve("nodemesh-proxy.aot")), ProxyAotCache.forClassPath(cp, 25));
    assertEquals(Optional.empty(), ProxyAotCache.forClassPath(cp, 21));
    Files.createDirectories(dir.resolve("classes"));
    assertEquals(
        Optional.empty(), ProxyAotCache.forClassPath(cp + ":" + dir.resolve("classes"), 25));
    assertEquals(
        Optional.empty(), ProxyAotCache.forClassPath(cp + ":" + dir.resolve("gone.jar"), 25));
  }

  @Test
  void aCacheNewerThanEveryJarIsUsedElseNodeOneTrainsAndTheOthersGoWithout() throws IOException {
    String cp = file("nodemesh.jar", 1000) + ":" + file("lib.jar", 2000);
    Path cache = dir.resolve("nodemesh-proxy.aot");
    List<String> train = List.of("-XX:AOTCacheOutput=" + cache + ".training");
    assertEquals(train, ProxyAotCache.options(cache, cp, true), "missing: trained");
    assertEquals(List.of(), ProxyAotCache.options(cache, cp, false));
    file("nodemesh-proxy.aot", 3000);
    assertEquals(List.of("-XX:AOTCache=" + cache), ProxyAotCache.options(cache, cp, true));
    assertEquals(List.of("-XX:AOTCache=" + cache), ProxyAotCache.options(cache, cp, false));
    Files.setLastModifiedTime(dir.resolve("lib.jar"), FileTime.fromMillis(4000)); // rebuilt
    assertEquals(train, ProxyAotCache.options(cache, cp, true), "stale: trained again");
    assertEquals(List.of(), ProxyAotCache.options(cache, cp, false));
  }

  @Test
  void whatTheTrainerWroteReplacesTheCacheAndNothingWrittenChangesNothing() throws IOException {
    Path cache = file("nodemesh-proxy.aot", 1000);
    Path training = dir.resolve("nodemesh-proxy.aot.training");
    List<String> argv =
        List.of("java", "-Xmx64m", "-XX:AOTCacheOutput=" + training, "-cp", "x.jar", "Main");
    assertEquals(Optional.of(training), ProxyAotCache.training(argv));
    assertEquals(
        Optional.empty(), ProxyAotCache.training(List.of("java", "-XX:AOTCache=" + cache)));
    assertEquals(
        List.of("java", "-Xmx64m", "-cp", "x.jar", "Main"), ProxyAotCache.withoutTraining(argv));

    assertEquals(Optional.empty(), ProxyAotCache.publish(training), "killed before writing");
    assertEquals("nodemesh-proxy.aot", Files.readString(cache));

    Files.writeString(training, "trained");
    Files.writeString(dir.resolve("nodemesh-proxy.aot.training.config"), "left by the JVM");
    assertEquals(Optional.of(cache), ProxyAotCache.publish(training));
    assertEquals("trained", Files.readString(cache));
    assertFalse(Files.exists(training));
    assertFalse(Files.exists(dir.resolve("nodemesh-proxy.aot.training.config")));
    assertTrue(Files.exists(cache));
  }
}
