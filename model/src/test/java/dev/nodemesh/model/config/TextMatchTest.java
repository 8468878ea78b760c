package dev.nodemesh.model.config;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.regex.PatternSyntaxException;
import org.junit.jupiter.api.Test;

/** Regular-expression matches run on RE2/J: linear in the input, backtracking syntax refused. */
class TextMatchTest {
  @Test
  void aCatastrophicBacktrackingPatternCompletesOnALongInput() {
    // With a backtracking engine (a+)+$ against "aaa...ab" takes time exponential in the length;
    // 100,000 characters would never finish. RE2 answers in one pass.
    TextMatch m = new TextMatch(TextMatch.Kind.REGULAR_EXPRESSION, "x-h", "(a+)+$");
    assertFalse(m.matches("a".repeat(100_000) + "b"));
    assertTrue(m.matches("a".repeat(100_000)));
  }

  @Test
  void aRegexMustMatchTheWholeValue() {
    TextMatch m = new TextMatch(TextMatch.Kind.REGULAR_EXPRESSION, "", "/api/v[0-9]+");
    assertTrue(m.matches("/api/v12"));
    assertFalse(m.matches("/api/v12/items"));
    assertFalse(m.matches("/x/api/v1"));
  }

  @Test
  void backreferencesAndLookaroundAreRefusedWithAReason() {
    PatternSyntaxException backref =
        assertThrows(
            PatternSyntaxException.class,
            () -> new TextMatch(TextMatch.Kind.REGULAR_EXPRESSION, "", "(a)\\1"));
    assertTrue(
        backref.getDescription().contains("invalid escape sequence: `\\1`"),
        backref.getDescription());
    assertThrows(
        PatternSyntaxException.class,
        () -> new TextMatch(TextMatch.Kind.REGULAR_EXPRESSION, "", "a(?!b)"));
    assertThrows(
        PatternSyntaxException.class,
        () -> new TextMatch(TextMatch.Kind.REGULAR_EXPRESSION, "", "a++"));
  }

  @Test
  void aGrpcMethodIsQuotedForRe2() {
    TextMatch m = GrpcMatch.path(false, null, "Get");
    assertTrue(m.matches("/pkg.Svc/Get"));
    assertFalse(m.matches("/pkg.Svc/GetX"));
  }
}
