package dev.nodemesh.scripts.cli;

import dev.nodemesh.control.ControlPlane;
import dev.nodemesh.control.ca.BootstrapTokens;
import dev.nodemesh.control.ca.CaOptions;
import dev.nodemesh.control.ca.CaSettings;
import dev.nodemesh.control.ca.CertificateAuthority;
import dev.nodemesh.control.ca.DirectoryRootStore;
import dev.nodemesh.control.ca.NodeAuthenticator;
import dev.nodemesh.control.ca.SecretRootStore;
import dev.nodemesh.control.ca.TokenReviewAuthenticator;
import dev.nodemesh.control.ca.TrustBundlePublisher;
import dev.nodemesh.control.enrolment.EnrolmentRegistry;
import dev.nodemesh.control.source.KubernetesSource;
import dev.nodemesh.control.source.LocalSource;
import dev.nodemesh.control.source.Source;
import dev.nodemesh.control.status.RouteStatus;
import dev.nodemesh.control.status.RouteStatusWriter;
import dev.nodemesh.model.capture.CaptureScope;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import org.jspecify.annotations.Nullable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code nodemesh control}: runs the control plane in the foreground until SIGTERM/SIGINT. Only
 * turns flags into a source and a {@link ControlPlane}.
 */
@Command(
    name = "control",
    mixinStandardHelpOptions = true,
    description = "Run the control plane (xDS server) in the foreground until SIGTERM or SIGINT.")
final class ControlCommand implements Callable<Integer> {
  static final String DIR_PREFIX = "dir:";

  @Spec CommandSpec spec = CommandSpec.create();

  @Option(
      names = "--source",
      required = true,
      paramLabel = "kubernetes|dir:PATH",
      description =
          "Where resources come from: the cluster (in-cluster config or ~/.kube/config), or a"
              + " directory of Kubernetes-shaped YAML.")
  String source = "";

  @Option(
      names = "--listen",
      paramLabel = "HOST:PORT",
      description = "xDS (gRPC) address (default: ${DEFAULT-VALUE}).",
      defaultValue = "0.0.0.0:15010",
      converter = ProxyCommand.HostPortConverter.class)
  InetSocketAddress listen = new InetSocketAddress("0.0.0.0", 15010);

  @Option(
      names = "--admin",
      paramLabel = "HOST:PORT",
      description = "/healthz, /ready and /metrics (default: ${DEFAULT-VALUE}).",
      defaultValue = "127.0.0.1:15014",
      converter = ProxyCommand.HostPortConverter.class)
  InetSocketAddress admin = new InetSocketAddress("127.0.0.1", 15014);

  @Option(
      names = "--debounce-ms",
      paramLabel = "MS",
      description = "Changes within this window become one push (default: ${DEFAULT-VALUE}).",
      defaultValue = "100")
  long debounceMillis = 100;

  @Option(
      names = "--exclude-namespace",
      paramLabel = "NS",
      description =
          "Namespaces outside the mesh (repeatable; default: kube-system, nodemesh): the same list"
              + " install-cni gives the CNI plugin. Their workloads go out uncaptured: other nodes"
              + " reach them directly and their node's /ready does not wait for them.")
  List<String> excludedNamespaces = new ArrayList<>();

  @Option(
      names = "--exclude-pod",
      paramLabel = "NS/NAME",
      description = "Single pods outside the mesh (repeatable), as install-cni's --exclude-pod.")
  List<String> excludedPods = new ArrayList<>();

  @Option(
      names = "--require-enrolment",
      paramLabel = "auto|on|off",
      defaultValue = "auto",
      description =
          "A workload in the capture scope is captured (other nodes tunnel to it) only once its"
              + " node's proxy reports it enrolled; a pod running since before the install goes"
              + " out uncaptured until then, and its node's /ready does not wait for it. With"
              + " --source=kubernetes it is recorded as the pod annotation nodemesh.dev/enrolled-on"
              + " (needs patch on pods). auto (default): on with --source=kubernetes, off with"
              + " --source=dir (local mode enrols every pod it lists).")
  String requireEnrolment = "auto";

  @Option(
      names = "--resync-s",
      paramLabel = "S",
      description = "Kubernetes informer resync period, 0 = none (default: ${DEFAULT-VALUE}).",
      defaultValue = "300")
  long resyncSeconds = 300;

  @Option(
      names = "--ca-dir",
      paramLabel = "DIR",
      description =
          "Run the CA with its root in DIR (ca.crt, ca.key 0600), made on first start and reused.")
  @Nullable Path caDir;

  @Option(
      names = "--ca-secret",
      paramLabel = "[NAMESPACE/]NAME",
      description =
          "Run the CA with its root in this Kubernetes Secret, made on first start (namespace:"
              + " the control plane's own).")
  @Nullable String caSecret;

  @Option(
      names = "--ca-cert",
      paramLabel = "FILE",
      description =
          "Run the CA as this operator-supplied intermediate (PEM; with --ca-key and --ca-chain).")
  @Nullable Path caCert;

  @Option(
      names = "--ca-key",
      paramLabel = "FILE",
      description = "The intermediate's private key (PEM).")
  @Nullable Path caKey;

  @Option(
      names = "--ca-chain",
      paramLabel = "FILE",
      description =
          "PEM certificates above the intermediate, up to and including the operator's root.")
  @Nullable Path caChain;

  @Option(
      names = "--trust-domain",
      paramLabel = "DOMAIN",
      description = "SPIFFE trust domain of issued identities (default: ${DEFAULT-VALUE}).",
      defaultValue = CaSettings.DEFAULT_TRUST_DOMAIN)
  String trustDomain = CaSettings.DEFAULT_TRUST_DOMAIN;

  @Option(
      names = "--cert-ttl",
      paramLabel = "DURATION",
      description =
          "Lifetime of workload certificates, also the longest a proxy may ask for, e.g. 24h, 90m,"
              + " 30s (default: ${DEFAULT-VALUE}).",
      defaultValue = "24h",
      converter = DurationConverter.class)
  Duration certTtl = CaSettings.DEFAULT_TTL;

  @Option(
      names = "--bootstrap-tokens",
      paramLabel = "FILE",
      description =
          "Authenticate node proxies by the '<node-name> <token>' lines of FILE (local mode)"
              + " instead of Kubernetes TokenReview.")
  @Nullable Path bootstrapTokens;

  @Option(
      names = "--proxy-namespace",
      paramLabel = "NAMESPACE",
      description =
          "Namespace of the node proxies' pods, for TokenReview and --ca-root-configmap"
              + " (default: the control plane's).")
  @Nullable String proxyNamespace;

  @Option(
      names = "--proxy-service-account",
      paramLabel = "NAME",
      description = "TokenReview: the node proxies' service account (default: ${DEFAULT-VALUE}).",
      defaultValue = "nodemesh-proxy")
  String proxyServiceAccount = "nodemesh-proxy";

  @Option(
      names = "--token-audience",
      paramLabel = "AUDIENCE",
      description =
          "TokenReview: audience the proxies' tokens must carry (repeatable; default: the API server's).")
  List<String> tokenAudiences = new ArrayList<>();

  @Option(
      names = "--tls-san",
      paramLabel = "NAME|IP",
      description =
          "Serve gRPC (xDS and CA) over TLS with a certificate from the CA for these names"
              + " (repeatable); none: plaintext.")
  List<String> tlsSans = new ArrayList<>();

  @Option(
      names = "--ca-root-configmap",
      paramLabel = "NAME",
      description =
          "Publish the CA's root certificates (ca.crt, no key) in this ConfigMap of the proxies'"
              + " namespace (--proxy-namespace), on start and whenever they change, for"
              + " 'nodemesh proxy --ca-root'. Needs a CA and --source=kubernetes.")
  @Nullable String caRootConfigMap;

  private @Nullable KubernetesClient kube;

  private KubernetesClient kube() {
    KubernetesClient k = kube;
    if (k == null) {
      k = new KubernetesClientBuilder().build();
      kube = k;
    }
    return k;
  }

  private String ownNamespace() {
    String ns = kube().getNamespace();
    return ns == null || ns.isEmpty() ? "nodemesh-system" : ns;
  }

  /** The CA's settings from the flags, or null when no CA flag is given. */
  @Nullable CaOptions makeCa() throws Exception {
    boolean intermediate = caCert != null || caKey != null || caChain != null;
    int roots = (caDir != null ? 1 : 0) + (caSecret != null ? 1 : 0) + (intermediate ? 1 : 0);
    if (roots == 0) {
      if (bootstrapTokens != null || !tlsSans.isEmpty() || caRootConfigMap != null) {
        throw usage(
            "--bootstrap-tokens, --tls-san and --ca-root-configmap need a CA: --ca-dir,"
                + " --ca-secret or --ca-cert");
      }
      return null;
    }
    if (roots > 1) {
      throw usage("choose one of --ca-dir, --ca-secret and --ca-cert/--ca-key/--ca-chain");
    }
    CaSettings settings;
    try {
      settings = CaSettings.of(trustDomain, certTtl);
    } catch (IllegalArgumentException e) {
      throw usage(e.getMessage());
    }
    if (intermediate && (caCert == null || caKey == null || caChain == null)) {
      throw usage("--ca-cert, --ca-key and --ca-chain go together");
    }
    if (caRootConfigMap != null && !source.equals("kubernetes")) {
      throw usage("--ca-root-configmap needs --source=kubernetes");
    }
    NodeAuthenticator nodes;
    if (bootstrapTokens != null) {
      nodes = BootstrapTokens.load(bootstrapTokens);
    } else if (source.equals("kubernetes")) {
      String ns = proxyNamespace != null ? proxyNamespace : ownNamespace();
      nodes = new TokenReviewAuthenticator(kube(), ns, proxyServiceAccount, tokenAudiences);
    } else {
      throw usage("outside Kubernetes the CA needs --bootstrap-tokens");
    }
    CertificateAuthority ca;
    if (intermediate) {
      ca =
          CertificateAuthority.fromFiles(
              java.util.Objects.requireNonNull(caCert),
              java.util.Objects.requireNonNull(caKey),
              java.util.Objects.requireNonNull(caChain),
              settings,
              Clock.systemUTC());
    } else if (caDir != null) {
      ca =
          CertificateAuthority.loadOrCreate(
              new DirectoryRootStore(caDir), settings, Clock.systemUTC());
    } else {
      String ref = caSecret == null ? "" : caSecret;
      int slash = ref.indexOf('/');
      String ns = slash < 0 ? ownNamespace() : ref.substring(0, slash);
      String name = ref.substring(slash + 1);
      if (name.isEmpty()) {
        throw usage("--ca-secret needs a name");
      }
      ca =
          CertificateAuthority.loadOrCreate(
              new SecretRootStore(kube(), ns, name), settings, Clock.systemUTC());
    }
    TrustBundlePublisher publisher = null;
    if (caRootConfigMap != null) {
      String ns = proxyNamespace != null ? proxyNamespace : ownNamespace();
      publisher = new TrustBundlePublisher(kube(), ns, caRootConfigMap, ca::trustBundle);
    }
    return new CaOptions(ca, nodes, tlsSans, publisher);
  }

  private CommandLine.ParameterException usage(@Nullable String message) {
    return new CommandLine.ParameterException(spec.commandLine(), String.valueOf(message));
  }

  private CaptureScope captureScope() {
    try {
      return CaptureScope.of(excludedNamespaces, excludedPods);
    } catch (IllegalArgumentException e) {
      throw usage("--exclude-pod: " + e.getMessage());
    }
  }

  private boolean requiresEnrolment(boolean kubernetes) {
    try {
      return requiresEnrolment(requireEnrolment, kubernetes);
    } catch (IllegalArgumentException e) {
      throw usage(e.getMessage());
    }
  }

  /**
   * Whether capture waits for the proxies' enrolment reports. {@code auto} turns it on for a
   * cluster, where pods that ran before the install match the scope but were never enrolled ({@code
   * EnrolmentGateRootTest}); local mode starts every pod it lists through the CNI chain, so there
   * the gate would only delay capture until the first report.
   *
   * @param kubernetes the source is the Kubernetes API (else a YAML directory)
   * @throws IllegalArgumentException for a mode other than auto, on and off
   */
  static boolean requiresEnrolment(String mode, boolean kubernetes) {
    return switch (mode) {
      case "auto" -> kubernetes;
      case "on" -> true;
      case "off" -> false;
      default ->
          throw new IllegalArgumentException(
              "--require-enrolment must be auto, on or off, got " + mode);
    };
  }

  /** Checked apart from running, so a bad flag is a usage error (exit 2) before anything starts. */
  Source makeSource() {
    if (debounceMillis < 0 || resyncSeconds < 0) {
      throw new CommandLine.ParameterException(
          spec.commandLine(), "--debounce-ms and --resync-s must be >= 0");
    }
    boolean kubernetes = source.equals("kubernetes");
    // Checked before anything is built (a Kubernetes client, the status writer).
    EnrolmentRegistry enrolments = requiresEnrolment(kubernetes) ? new EnrolmentRegistry() : null;
    if (kubernetes) {
      // Route status: every replica computes it, the holder of one Lease in this namespace writes.
      // A pod's HOSTNAME is its name, unique among the replicas.
      String self = System.getenv("HOSTNAME");
      RouteStatusWriter status =
          new RouteStatusWriter(
              kube(),
              RouteStatus.CONTROLLER,
              Clock.systemUTC(),
              new RouteStatusWriter.Lease(
                  ownNamespace(),
                  RouteStatusWriter.LEASE,
                  self == null || self.isEmpty()
                      ? "control-" + java.util.UUID.randomUUID()
                      : self));
      return new KubernetesSource(kube(), resyncSeconds * 1000, status, captureScope(), enrolments);
    }
    if (source.startsWith(DIR_PREFIX) && source.length() > DIR_PREFIX.length()) {
      return new LocalSource(
          Path.of(source.substring(DIR_PREFIX.length())), 1000, captureScope(), enrolments);
    }
    throw new CommandLine.ParameterException(
        spec.commandLine(), "--source must be kubernetes or dir:PATH, got '" + source + "'");
  }

  @Override
  public Integer call() throws Exception {
    Source s = makeSource();
    CaOptions ca = makeCa();
    ControlPlane cp = ControlPlane.start(s, listen, admin, Duration.ofMillis(debounceMillis), ca);
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  try {
                    cp.close();
                  } catch (Exception e) {
                    System.err.println("nodemesh control: stopping: " + e);
                  }
                  stopped.countDown();
                },
                "nodemesh-shutdown"));
    stopped.await();
    return 0;
  }

  /** {@code 24h}, {@code 90m}, {@code 30s}, {@code 500ms} or ISO-8601 ({@code PT24H}). */
  static final class DurationConverter implements CommandLine.ITypeConverter<Duration> {
    @Override
    public Duration convert(String value) {
      try {
        if (value.startsWith("P") || value.startsWith("p")) {
          return Duration.parse(value);
        }
        if (value.endsWith("ms")) {
          return Duration.ofMillis(Long.parseLong(value.substring(0, value.length() - 2)));
        }
        long n = Long.parseLong(value.substring(0, value.length() - 1));
        return switch (value.charAt(value.length() - 1)) {
          case 's' -> Duration.ofSeconds(n);
          case 'm' -> Duration.ofMinutes(n);
          case 'h' -> Duration.ofHours(n);
          case 'd' -> Duration.ofDays(n);
          default -> throw new CommandLine.TypeConversionException("bad duration '" + value + "'");
        };
      } catch (RuntimeException e) {
        if (e instanceof CommandLine.TypeConversionException t) {
          throw t;
        }
        throw new CommandLine.TypeConversionException(
            "expected a duration like 24h, 90m, 30s or PT24H, got '" + value + "'");
      }
    }
  }
}
