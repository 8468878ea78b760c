package dev.nodemesh.proxy.accesslog;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyOrder;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;
import org.jspecify.annotations.Nullable;

/**
 * One line of the access log, serialized by Jackson with snake_case names; null fields are left
 * out, so the optional ones appear only where a path fills them.
 *
 * <p>Always present: {@code start_time} (RFC 3339, UTC, when the connection was accepted), {@code
 * duration_us} (accept to close), {@code bytes_sent} (client → destination), {@code bytes_received}
 * (destination → client), {@code reporter}, {@code node}, the source and destination workload and
 * namespace and {@code destination_service} ("unknown" where not known, the same values as the
 * metrics labels), {@code response_flags} ({@link ResponseFlag} codes joined by ",", or "-").
 *
 * <p>When known: {@code original_destination} and {@code upstream_address} (ip:port), {@code
 * upstream_connect_us} (relay start to upstream connected, as {@code
 * nodemesh_tcp_connect_duration_seconds}); filled by later paths: {@code source_principal}, {@code
 * destination_principal} (SPIFFE ids), {@code authz_decision} and {@code authz_policy}, {@code
 * http_method}, {@code http_path}, {@code http_status}, {@code grpc_status} (gRPC requests: the
 * status from the response's trailers or trailers-only headers, or the one the proxy answered).
 *
 * <p>To add a field: a component here (nullable unless every path knows it), its setter in {@link
 * ConnectionLog}, and the path that knows it calls the setter.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
@JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
@JsonPropertyOrder({"start_time", "duration_us", "reporter", "node"})
public record AccessLogEntry(
    String startTime,
    long durationUs,
    String reporter,
    String node,
    String sourceWorkload,
    String sourceNamespace,
    String destinationWorkload,
    String destinationNamespace,
    String destinationService,
    @Nullable String originalDestination,
    @Nullable String upstreamAddress,
    @Nullable Long upstreamConnectUs,
    long bytesSent,
    long bytesReceived,
    String responseFlags,
    @Nullable String sourcePrincipal,
    @Nullable String destinationPrincipal,
    @Nullable String authzDecision,
    @Nullable String authzPolicy,
    @Nullable String httpMethod,
    @Nullable String httpPath,
    @Nullable Integer httpStatus,
    @Nullable Integer grpcStatus) {}
