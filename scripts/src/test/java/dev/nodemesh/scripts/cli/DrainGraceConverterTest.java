package dev.nodemesh.scripts.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.time.Duration;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

class DrainGraceConverterTest {
  private final ProxyCommand.DrainGraceConverter convert = new ProxyCommand.DrainGraceConverter();

  @Test
  void readsSecondsMillisMinutesAndIso() {
    assertEquals(Duration.ofSeconds(30), convert.convert("30s"));
    assertEquals(Duration.ofMillis(500), convert.convert("500ms"));
    assertEquals(Duration.ofMinutes(2), convert.convert("2m"));
    assertEquals(Duration.ofSeconds(45), convert.convert("PT45S"));
    assertEquals(Duration.ZERO, convert.convert("0s"));
  }

  @Test
  void refusesWhatIsNoDurationOrNegative() {
    assertThrows(CommandLine.TypeConversionException.class, () -> convert.convert("soon"));
    assertThrows(CommandLine.TypeConversionException.class, () -> convert.convert("30"));
    assertThrows(CommandLine.TypeConversionException.class, () -> convert.convert("-5s"));
  }
}
