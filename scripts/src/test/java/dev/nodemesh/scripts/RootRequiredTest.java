package dev.nodemesh.scripts;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.nodemesh.scripts.RootRequired.Decision;
import org.junit.jupiter.api.Test;

class RootRequiredTest {
  @Test
  void rootAlwaysRuns() {
    assertEquals(Decision.RUN, RootRequired.decide(true, false));
    assertEquals(Decision.RUN, RootRequired.decide(true, true));
  }

  @Test
  void missingRootSkipsOutsideCiAndFailsInCi() {
    assertEquals(Decision.SKIP, RootRequired.decide(false, false));
    assertEquals(Decision.FAIL, RootRequired.decide(false, true));
  }
}
