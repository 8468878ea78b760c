package dev.nodemesh.model.admin;

import com.sun.net.httpserver.Headers;
import com.sun.net.httpserver.HttpContext;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import com.sun.net.httpserver.HttpPrincipal;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * Runs a {@link HttpHandler} written for the JDK's server ({@link LoggingEndpoint}) against a
 * request {@link AdminHttpServer} has already read whole: method, URI and peer in, status, content
 * type and body out. No request body or headers are passed, since the handlers served this way read
 * only the query.
 */
final class ExchangeAdapter extends HttpExchange {
  private final String method;
  private final URI uri;
  private final InetSocketAddress peer;
  private final InetSocketAddress local;
  private final Headers requestHeaders = new Headers();
  private final Headers responseHeaders = new Headers();
  private final ByteArrayOutputStream body = new ByteArrayOutputStream();
  private final Map<String, Object> attributes = new HashMap<>();
  private int status = -1;

  private ExchangeAdapter(String method, URI uri, InetSocketAddress peer, InetSocketAddress local) {
    this.method = method;
    this.uri = uri;
    this.peer = peer;
    this.local = local;
  }

  static AdminHttpServer.Answer run(HttpHandler handler, AdminHttpServer.Request request) {
    ExchangeAdapter ex =
        new ExchangeAdapter(request.method(), request.uri(), request.peer(), request.local());
    try {
      handler.handle(ex);
    } catch (IOException e) {
      return AdminHttpServer.Answer.text(500, "failed: " + e + "\n");
    }
    String type = ex.responseHeaders.getFirst("Content-Type");
    return new AdminHttpServer.Answer(
        ex.status < 0 ? 500 : ex.status,
        type == null ? "text/plain" : type,
        ex.body.toString(StandardCharsets.UTF_8));
  }

  @Override
  public Headers getRequestHeaders() {
    return requestHeaders;
  }

  @Override
  public Headers getResponseHeaders() {
    return responseHeaders;
  }

  @Override
  public URI getRequestURI() {
    return uri;
  }

  @Override
  public String getRequestMethod() {
    return method;
  }

  @Override
  public HttpContext getHttpContext() {
    throw new UnsupportedOperationException("no HttpContext behind the Netty admin server");
  }

  @Override
  public void close() {}

  @Override
  public InputStream getRequestBody() {
    return InputStream.nullInputStream();
  }

  @Override
  public OutputStream getResponseBody() {
    return body;
  }

  @Override
  public void sendResponseHeaders(int rCode, long responseLength) {
    status = rCode;
  }

  @Override
  public InetSocketAddress getRemoteAddress() {
    return peer;
  }

  @Override
  public int getResponseCode() {
    return status;
  }

  @Override
  public InetSocketAddress getLocalAddress() {
    return local;
  }

  @Override
  public String getProtocol() {
    return "HTTP/1.1";
  }

  @Override
  public @Nullable Object getAttribute(String name) {
    return attributes.get(name);
  }

  @Override
  public void setAttribute(String name, @Nullable Object value) {
    if (value == null) {
      attributes.remove(name);
    } else {
      attributes.put(name, value);
    }
  }

  @Override
  public void setStreams(@Nullable InputStream i, @Nullable OutputStream o) {
    throw new UnsupportedOperationException("filters are not supported here");
  }

  @Override
  public @Nullable HttpPrincipal getPrincipal() {
    return null;
  }
}
