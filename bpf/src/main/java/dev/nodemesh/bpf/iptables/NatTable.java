package dev.nodemesh.bpf.iptables;

import java.util.List;

/**
 * What {@code iptables-save -t nat} shows of nodemesh's rules in one namespace: parsed, so that
 * install and remove can be written as one transaction that matches what is there.
 */
public record NatTable(
    boolean outputJump, boolean inboundJump, boolean outputChain, boolean inboundChain) {

  public static NatTable parse(String iptablesSave) {
    List<String> lines = iptablesSave.lines().map(String::strip).toList();
    return new NatTable(
        lines.contains(RedirectRules.OUTPUT_JUMP),
        lines.contains(RedirectRules.INBOUND_JUMP),
        lines.stream().anyMatch(l -> l.startsWith(":" + RedirectRules.OUTPUT_CHAIN + " ")),
        lines.stream().anyMatch(l -> l.startsWith(":" + RedirectRules.INBOUND_CHAIN + " ")));
  }

  /** True when nothing of nodemesh is left in the table. */
  public boolean clean() {
    return !outputJump && !inboundJump && !outputChain && !inboundChain;
  }

  public boolean complete() {
    return outputJump && inboundJump && outputChain && inboundChain;
  }
}
