package dev.nodemesh.proxy.authz;

/**
 * The outcome of an authorization check.
 *
 * @param policy {@code namespace/name} of the policy that decided, or a fixed word for a default
 *     ({@code "default-allow"}, {@code "default-deny"}, {@code "peer-authentication"})
 * @param reason a bounded label value for metrics: {@code allowed}, {@code denied_by_policy},
 *     {@code no_allow_match}, {@code default_deny}, {@code plaintext_strict}, {@code no_config}
 *     (nothing in force yet: {@link FailClosedAuthorizer})
 */
public record Decision(boolean allowed, String policy, String reason) {}
