package dev.nodemesh.bpf.iptables;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class RedirectRulesTest {
  private final RedirectRules rules = RedirectRules.defaults();

  @Test
  void freshInstallAddsBothJumpsAfterTheChains() {
    String s = rules.installScript(false, false);
    assertTrue(s.startsWith("*nat\n:NODEMESH_OUTPUT - [0:0]\n:NODEMESH_INBOUND - [0:0]\n"), s);
    assertTrue(s.contains("-A NODEMESH_OUTPUT -m mark --mark 0x539 -j RETURN\n"), s);
    assertTrue(s.contains("-A NODEMESH_OUTPUT -p tcp --syn -j REDIRECT --to-ports 15001\n"), s);
    assertTrue(s.contains("-A NODEMESH_INBOUND -p tcp --dport 15008 -j RETURN\n"), s);
    assertTrue(s.contains("-A NODEMESH_INBOUND -p tcp --syn -j REDIRECT --to-ports 15006\n"), s);
    assertTrue(s.indexOf("-A OUTPUT") > s.indexOf("REDIRECT --to-ports 15006"), s);
    assertTrue(s.endsWith("COMMIT\n"));
  }

  @Test
  void reinstallDoesNotDuplicateJumps() {
    String s = rules.installScript(true, true);
    assertFalse(s.contains("-A OUTPUT"), s);
    assertFalse(s.contains("-A PREROUTING"), s);
  }

  @Test
  void markExemptionComesBeforeTheRedirect() {
    String s = rules.installScript(false, false);
    assertTrue(s.indexOf("--mark") < s.indexOf("--to-ports 15001"));
  }

  @Test
  void removeDeletesOnlyWhatIsPresent() {
    assertEquals("*nat\nCOMMIT\n", RedirectRules.removeScript(false, false, false, false));
    String s = RedirectRules.removeScript(true, false, true, true);
    assertTrue(s.contains("-D OUTPUT -p tcp -j NODEMESH_OUTPUT\n"));
    assertFalse(s.contains("-D PREROUTING"));
    assertTrue(s.contains("-X NODEMESH_INBOUND\n"));
  }

  @Test
  void natTableParsesIptablesSave() {
    String save =
        "*nat\n:PREROUTING ACCEPT [0:0]\n:NODEMESH_OUTPUT - [0:0]\n"
            + "-A OUTPUT -p tcp -j NODEMESH_OUTPUT\nCOMMIT\n";
    NatTable t = NatTable.parse(save);
    assertTrue(t.outputJump());
    assertTrue(t.outputChain());
    assertFalse(t.inboundJump());
    assertFalse(t.clean());
    assertFalse(t.complete());
  }
}
