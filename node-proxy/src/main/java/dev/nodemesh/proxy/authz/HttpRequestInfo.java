package dev.nodemesh.proxy.authz;

import java.util.function.Function;
import org.jspecify.annotations.Nullable;

/**
 * What an L7 authorization check knows of one HTTP request.
 *
 * @param path the request path without the query
 * @param header a header's first value by lower-case name, null when absent
 */
public record HttpRequestInfo(
    String method, String path, Function<String, @Nullable String> header) {}
