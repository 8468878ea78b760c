package dev.nodemesh.model.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class FieldRulesTest {
  @Test
  void portsAreOneTo65535() {
    assertFalse(FieldRules.isPort(0));
    assertTrue(FieldRules.isPort(1));
    assertTrue(FieldRules.isPort(65535));
    assertFalse(FieldRules.isPort(65536));
    assertFalse(FieldRules.isPort(-1));
  }

  @Test
  void portNamesFollowKubernetes() {
    assertTrue(FieldRules.isPortName("http"));
    assertTrue(FieldRules.isPortName("h2c-8080"));
    assertTrue(FieldRules.isPortName("a23456789012345"), "15 characters");
    assertFalse(FieldRules.isPortName("a234567890123456"), "16 characters");
    assertFalse(FieldRules.isPortName("8080"), "needs a letter");
    assertFalse(FieldRules.isPortName("-http"));
    assertFalse(FieldRules.isPortName("http-"));
    assertFalse(FieldRules.isPortName("HTTP"));
    assertFalse(FieldRules.isPortName(""));
  }

  @Test
  void httpMethodsAreGatewayApis() {
    assertTrue(FieldRules.isHttpMethod("GET"));
    assertTrue(FieldRules.isHttpMethod("PATCH"));
    assertFalse(FieldRules.isHttpMethod("get"));
    assertFalse(FieldRules.isHttpMethod("PROPFIND"));
  }

  @Test
  void ipLiteralsAreNeverNames() {
    assertEquals("10.0.0.1", FieldRules.ipLiteral("10.0.0.1").getHostAddress());
    assertEquals(16, FieldRules.ipLiteral("fd00::1").getAddress().length);
    assertNull(FieldRules.ipLiteral("localhost"));
    assertNull(FieldRules.ipLiteral("10.0.0.256"));
  }
}
