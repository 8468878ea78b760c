package dev.nodemesh.model.config.parse;

import com.fasterxml.jackson.databind.JsonNode;
import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.config.PeerAuthentication;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/** Reads the mesh's {@code PeerAuthentication}: selector and mTLS mode (with port overrides). */
public final class PeerAuthenticationParser extends YamlFields {
  /**
   * @param file prefix of every message (a file name, or the source's name)
   * @param errors where problems are appended
   */
  public PeerAuthenticationParser(String file, List<String> errors) {
    super(file, errors);
  }

  /** Returns the peer authentication, or null after recording why it is invalid. */
  public @Nullable PeerAuthentication parse(JsonNode doc, String docLabel) {
    int before = errors.size();
    NamespacedName id = identify("PeerAuthentication", doc, docLabel);
    JsonNode spec = doc.path("spec");
    Map<String, String> selector = selector(spec);
    String modeText = text(spec.path("mtls"), "mode", "spec.mtls.mode");
    PeerAuthentication.Mode mode = null;
    if (modeText == null) {
      error("spec.mtls.mode", "is required (STRICT or PERMISSIVE)");
    } else {
      switch (modeText) {
        case "STRICT" -> mode = PeerAuthentication.Mode.STRICT;
        case "PERMISSIVE" -> mode = PeerAuthentication.Mode.PERMISSIVE;
        default -> error("spec.mtls.mode", quote(modeText) + " is not STRICT or PERMISSIVE");
      }
    }
    if (id == null || mode == null || errors.size() > before) {
      return null;
    }
    return new PeerAuthentication(id.name(), id.namespace(), selector, mode);
  }
}
