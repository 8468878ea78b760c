package dev.nodemesh.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class StartupTimelineTest {
  @Test
  void marksAreMillisecondsSinceTheJvmStartedAndReadyIsMarkedOnce() {
    AtomicLong now = new AtomicLong(10_000);
    StartupTimeline t = new StartupTimeline(now::get, () -> 9_700);
    t.mark("main");
    now.set(10_450);
    t.markOnce("config in force");
    now.set(10_600);
    t.markOnce("config in force"); // a later config is not the first
    t.mark("re-enrolment end");
    now.set(10_650);
    t.ready();
    now.set(11_000);
    t.ready();
    assertEquals("main 300, config in force 750, re-enrolment end 900, ready 950", t.describe());
  }
}
