package dev.nodemesh.bpf.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.nodemesh.bpf.testing.RootCondition.Decision;
import org.junit.jupiter.api.Test;

class RootConditionTest {
  @Test
  void rootAlwaysRuns() {
    assertEquals(Decision.RUN, RootCondition.decide(true, false));
    assertEquals(Decision.RUN, RootCondition.decide(true, true));
  }

  @Test
  void missingRootSkipsOutsideCiAndFailsInCi() {
    assertEquals(Decision.SKIP, RootCondition.decide(false, false));
    assertEquals(Decision.FAIL, RootCondition.decide(false, true));
  }
}
