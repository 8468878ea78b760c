package dev.nodemesh.proxy.l7;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The protocol decision from a connection's first bytes. */
class SnifferTest {
  @ParameterizedTest(name = "[{0}] declared={1} -> {2}")
  @CsvSource(
      delimiter = '|',
      nullValues = "null",
      value = {
        "PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n| false | H2",
        "PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n| true  | H2",
        "PRI * HTTP| false | null", // a preface so far: wait for the rest
        "GET / HTTP/1.1\\r\\n| false | HTTP1",
        "DELETE /x| false | HTTP1",
        "DEL| false | null",
        "OPTIONS * HTTP/1.1| false | HTTP1",
        "SSH-2.0-OpenSSH| false | OTHER",
        "\\u0016\\u0003\\u0001| false | OTHER", // a TLS ClientHello
        "SSH-2.0-OpenSSH| true  | HTTP1", // declared HTTP: the codec answers 400
        "get / HTTP/1.1| false | OTHER", // methods are case-sensitive
      })
  void decides(String bytes, boolean declared, HttpProxy.Protocol expected) {
    String text =
        bytes
            .replace("\\r", "\r")
            .replace("\\n", "\n")
            .replace("\\u0016", "\u0016")
            .replace("\\u0003", "\u0003")
            .replace("\\u0001", "\u0001");
    ByteBuf in = Unpooled.copiedBuffer(text, StandardCharsets.ISO_8859_1);
    try {
      assertEquals(expected, HttpProxy.sniff(in, declared));
      assertEquals(0, in.readerIndex()); // sniffing consumes nothing
    } finally {
      in.release();
    }
  }
}
