package dev.nodemesh.bpf.iptables;

/**
 * The nat rules that send a pod's TCP traffic to the node proxy's in-pod listeners, as
 * iptables-restore input. Pure text: installing and removing happen in {@link PodInterception}.
 *
 * <p>Outbound: every TCP connect leaving the pod (not over loopback, not from a socket carrying the
 * proxy's mark) is redirected to the outbound listener. Inbound: every TCP connection arriving on
 * the pod's interfaces, except the HBONE port, is redirected to the inbound listener.
 *
 * <p>Both REDIRECTs match only a connection's first packet ({@code --syn}). A namespace gets
 * connection tracking only once it has a nat table, so a connection opened before the pod was
 * enrolled is picked up mid-stream by conntrack when the rules appear, and its next packet would be
 * treated as the first of a new flow: without {@code --syn} it would be redirected to the proxy's
 * port, which knows nothing of it and answers with a reset. With it, enrolling a running pod leaves
 * its open connections alone.
 *
 * @param outboundPort the in-pod outbound listener (15001)
 * @param inboundPort the in-pod inbound plaintext listener (15006)
 * @param hbonePort the tunnel port left alone (15008)
 * @param proxyMark SO_MARK carried by the proxy's own sockets, exempt from redirection
 */
public record RedirectRules(int outboundPort, int inboundPort, int hbonePort, int proxyMark) {
  public static final String OUTPUT_CHAIN = "NODEMESH_OUTPUT";
  public static final String INBOUND_CHAIN = "NODEMESH_INBOUND";
  static final String OUTPUT_JUMP = "-A OUTPUT -p tcp -j " + OUTPUT_CHAIN;
  static final String INBOUND_JUMP = "-A PREROUTING -p tcp -j " + INBOUND_CHAIN;

  /** The defaults of DESIGN.md: 15001, 15006, 15008 and mark 0x539. */
  public static RedirectRules defaults() {
    return new RedirectRules(15001, 15006, 15008, 0x539);
  }

  /**
   * One atomic transaction (a single COMMIT) that (re)creates both chains and adds the jumps that
   * are missing. Declaring a chain flushes it, so re-running it converges instead of duplicating.
   */
  public String installScript(boolean outputJumpPresent, boolean inboundJumpPresent) {
    StringBuilder s = new StringBuilder();
    s.append("*nat\n");
    s.append(':').append(OUTPUT_CHAIN).append(" - [0:0]\n");
    s.append(':').append(INBOUND_CHAIN).append(" - [0:0]\n");
    chainRules(s);
    if (!outputJumpPresent) {
      s.append(OUTPUT_JUMP).append('\n');
    }
    if (!inboundJumpPresent) {
      s.append(INBOUND_JUMP).append('\n');
    }
    s.append("COMMIT\n");
    return s.toString();
  }

  /**
   * The transaction for a namespace that has none of our rules, which needs no look at the table
   * first: it creates the chains with {@code -N}, which fails (and with it the whole transaction,
   * leaving the table as it was) when a chain exists already. A jump to a chain cannot exist
   * without the chain, so if this succeeds there is exactly one of each jump; if it fails, the
   * caller reads the table and converges with {@link #installScript}.
   */
  public String freshScript() {
    StringBuilder s = new StringBuilder("*nat\n");
    s.append("-N ").append(OUTPUT_CHAIN).append('\n');
    s.append("-N ").append(INBOUND_CHAIN).append('\n');
    chainRules(s);
    s.append(OUTPUT_JUMP).append('\n');
    s.append(INBOUND_JUMP).append('\n');
    s.append("COMMIT\n");
    return s.toString();
  }

  /**
   * The transaction for a namespace that already holds our rules ({@link Prior#INSTALLED}: a
   * restarted proxy re-enrolling its pods), which needs no look at the table first either: it
   * declares both chains (creating or emptying each) and refills them, and checks ({@code -C}) that
   * each jump is there instead of adding it. A missing jump fails the whole transaction, leaving
   * the table as it was, and the caller reads the table and converges with {@link #installScript};
   * a jump present twice (which no install of ours makes) is left so.
   */
  public String reinstallScript() {
    StringBuilder s = new StringBuilder("*nat\n");
    s.append(':').append(OUTPUT_CHAIN).append(" - [0:0]\n");
    s.append(':').append(INBOUND_CHAIN).append(" - [0:0]\n");
    chainRules(s);
    s.append(OUTPUT_JUMP.replaceFirst("-A", "-C")).append('\n');
    s.append(INBOUND_JUMP.replaceFirst("-A", "-C")).append('\n');
    s.append("COMMIT\n");
    return s.toString();
  }

  private void chainRules(StringBuilder s) {
    s.append("-A ")
        .append(OUTPUT_CHAIN)
        .append(" -m mark --mark ")
        .append(hex(proxyMark))
        .append(" -j RETURN\n");
    s.append("-A ").append(OUTPUT_CHAIN).append(" -o lo -j RETURN\n");
    s.append("-A ")
        .append(OUTPUT_CHAIN)
        .append(" -p tcp --syn -j REDIRECT --to-ports ")
        .append(outboundPort)
        .append('\n');
    s.append("-A ")
        .append(INBOUND_CHAIN)
        .append(" -p tcp --dport ")
        .append(hbonePort)
        .append(" -j RETURN\n");
    s.append("-A ")
        .append(INBOUND_CHAIN)
        .append(" -p tcp --syn -j REDIRECT --to-ports ")
        .append(inboundPort)
        .append('\n');
  }

  /** One transaction removing the jumps that are present and then both chains. */
  public static String removeScript(
      boolean outputJumpPresent,
      boolean inboundJumpPresent,
      boolean outputChainPresent,
      boolean inboundChainPresent) {
    StringBuilder s = new StringBuilder("*nat\n");
    if (outputJumpPresent) {
      s.append(OUTPUT_JUMP.replaceFirst("-A", "-D")).append('\n');
    }
    if (inboundJumpPresent) {
      s.append(INBOUND_JUMP.replaceFirst("-A", "-D")).append('\n');
    }
    if (outputChainPresent) {
      s.append("-F ").append(OUTPUT_CHAIN).append('\n');
      s.append("-X ").append(OUTPUT_CHAIN).append('\n');
    }
    if (inboundChainPresent) {
      s.append("-F ").append(INBOUND_CHAIN).append('\n');
      s.append("-X ").append(INBOUND_CHAIN).append('\n');
    }
    s.append("COMMIT\n");
    return s.toString();
  }

  private static String hex(int v) {
    return "0x" + Integer.toHexString(v);
  }
}
