package dev.nodemesh.cni.spec;

import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * A full Jackson mapper for tests, which read and compare JSON freely; the plugin itself uses
 * {@code JsonTrees}, whose start-up cost is a fraction of a mapper's.
 */
public final class TestJson {
  public static final ObjectMapper JSON = new ObjectMapper();

  private TestJson() {}
}
