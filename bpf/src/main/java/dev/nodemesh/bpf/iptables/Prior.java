package dev.nodemesh.bpf.iptables;

/**
 * What an install expects a pod's namespace to hold of nodemesh's rules before it runs: the guess
 * that picks its first transaction ({@link Transactions}). A right guess costs one restore per
 * family and no read; a wrong one fails that restore whole (nothing changes) and the tables are
 * then read and converged, so a wrong guess is slower, never wrong.
 */
public enum Prior {
  /** Nothing of ours: a new pod (CNI ADD). */
  NONE,
  /**
   * Our chains and jumps, as an earlier install left them: a restarted proxy re-enrolling the pods
   * the CNI plugin recorded, whose rules stayed in place while it was down. The chains are
   * rewritten (whatever was done to their contents meanwhile is undone) and the jumps are checked,
   * not added.
   */
  INSTALLED
}
