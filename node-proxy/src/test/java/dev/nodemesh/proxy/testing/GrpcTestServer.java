package dev.nodemesh.proxy.testing;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.ServerCalls;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A grpc-java server inside a pod namespace (its listening socket is made inside the namespace)
 * with one service, {@code test.Echo}, whose unary methods take and return raw bytes (no generated
 * stubs on either side): every method answers the pod's name, except {@code Slow}, which answers
 * after {@link #SLOW_MILLIS}, {@code Flaky}, which fails every other call with UNAVAILABLE
 * (trailers-only), and {@code Headers}, which answers {@code pod=<name>} and one {@code
 * h:<name>=<values joined by ,>} line per (text) request header it received. Counts the calls it
 * served.
 */
public final class GrpcTestServer implements AutoCloseable {
  public static final MethodDescriptor.Marshaller<byte[]> BYTES =
      new MethodDescriptor.Marshaller<>() {
        @Override
        public InputStream stream(byte[] value) {
          return new ByteArrayInputStream(value);
        }

        @Override
        public byte[] parse(InputStream stream) {
          try {
            return stream.readAllBytes();
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          }
        }
      };

  public static final long SLOW_MILLIS = 2000;

  /** The request headers of the call being served, for {@code Headers}. */
  private static final Context.Key<Metadata> HEADERS = Context.key("request-headers");

  private final Server server;
  private final EventLoopGroup group;
  private final AtomicInteger calls;

  private GrpcTestServer(Server server, EventLoopGroup group, AtomicInteger calls) {
    this.server = server;
    this.group = group;
    this.calls = calls;
  }

  public static GrpcTestServer start(Path netns, int port, String pod, String... methods)
      throws IOException {
    AtomicInteger calls = new AtomicInteger();
    AtomicInteger flaky = new AtomicInteger();
    EventLoopGroup group = new NioEventLoopGroup(1);
    ServerServiceDefinition.Builder svc = ServerServiceDefinition.builder("test.Echo");
    byte[] name = pod.getBytes(StandardCharsets.UTF_8);
    for (String m : methods) {
      svc.addMethod(
          MethodDescriptor.<byte[], byte[]>newBuilder()
              .setType(MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(MethodDescriptor.generateFullMethodName("test.Echo", m))
              .setRequestMarshaller(BYTES)
              .setResponseMarshaller(BYTES)
              .build(),
          ServerCalls.<byte[], byte[]>asyncUnaryCall(
              (req, out) -> {
                int n = calls.incrementAndGet();
                if (m.equals("Flaky") && flaky.incrementAndGet() % 2 == 1) {
                  // Every other call fails before any message: a trailers-only UNAVAILABLE.
                  out.onError(Status.UNAVAILABLE.withDescription("flaky " + n).asException());
                } else if (m.equals("Slow")) {
                  group.schedule(
                      () -> {
                        out.onNext(name);
                        out.onCompleted();
                      },
                      SLOW_MILLIS,
                      TimeUnit.MILLISECONDS);
                } else if (m.equals("Headers")) {
                  out.onNext(headers(pod, HEADERS.get()));
                  out.onCompleted();
                } else {
                  out.onNext(name);
                  out.onCompleted();
                }
              }));
    }
    try {
      Server server =
          NettyServerBuilder.forAddress(new InetSocketAddress(port))
              .channelFactory(
                  () -> {
                    // The listening socket is made by this constructor: inside the pod.
                    try (NetworkNamespace ns = NetworkNamespace.open(netns);
                        NetworkNamespace.Scope in = ns.enter()) {
                      return new NioServerSocketChannel();
                    } catch (IOException e) {
                      throw new UncheckedIOException(e);
                    }
                  })
              .bossEventLoopGroup(group)
              .workerEventLoopGroup(group)
              .addService(ServerInterceptors.intercept(svc.build(), new CaptureHeaders()))
              .build()
              .start();
      return new GrpcTestServer(server, group, calls);
    } catch (IOException | RuntimeException e) {
      group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
      throw e;
    }
  }

  private static byte[] headers(String pod, Metadata headers) {
    StringBuilder sb = new StringBuilder("pod=").append(pod).append('\n');
    for (String key : new java.util.TreeSet<>(headers.keys())) {
      if (!key.endsWith(Metadata.BINARY_HEADER_SUFFIX)) {
        Iterable<String> values =
            headers.getAll(Metadata.Key.of(key, Metadata.ASCII_STRING_MARSHALLER));
        sb.append("h:").append(key).append('=');
        sb.append(values == null ? "" : String.join(",", values)).append('\n');
      }
    }
    return sb.toString().getBytes(StandardCharsets.UTF_8);
  }

  /** Puts each call's request headers in its Context, where {@code Headers} reads them. */
  private static final class CaptureHeaders implements ServerInterceptor {
    @Override
    public <Q, A> ServerCall.Listener<Q> interceptCall(
        ServerCall<Q, A> call, Metadata headers, ServerCallHandler<Q, A> next) {
      return Contexts.interceptCall(
          Context.current().withValue(HEADERS, headers), call, headers, next);
    }
  }

  public int calls() {
    return calls.get();
  }

  @Override
  public void close() throws InterruptedException {
    server.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS).await(10, TimeUnit.SECONDS);
  }
}
