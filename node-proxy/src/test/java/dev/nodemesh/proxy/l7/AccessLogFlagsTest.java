package dev.nodemesh.proxy.l7;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.nodemesh.proxy.accesslog.ResponseFlag;
import java.util.Objects;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Which flag an access-log line carries, per what the exchange recorded. */
class AccessLogFlagsTest {
  @ParameterizedTest(name = "set={0} forwarded={1} status={2} -> {3}")
  @CsvSource({
    "RL, true, 429, RL",
    "UO, true, 503, UO",
    "DENY, true, 403, DENY",
    "FI, true, 500, FI",
    "NR, true, 500, NR",
    ", true, 502, UR",
    ", true, 503, UF",
    ", true, 504, UT",
    ", true, 200, ",
    ", true, 500, ",
    ", false, 400, DPE",
    ", false, 414, DPE",
    ", false, 431, DPE",
    ", false, 404, NR",
    ", false, 500, NR",
    ", false, 503, NR",
    ", false, 200, ",
  })
  void flags(String set, boolean forwarded, int status, String expected) {
    ResponseFlag flag =
        AccessLogFlags.flag(set == null ? null : ResponseFlag.valueOf(set), forwarded, status);
    assertEquals(expected, flag == null ? null : Objects.toString(flag));
  }
}
