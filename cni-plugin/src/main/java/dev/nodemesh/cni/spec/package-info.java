/**
 * The CNI specification's wire format (versions, environment, network config, results, errors),
 * with no nodemesh behaviour in it: both the plugin and the runner use it.
 */
@NullMarked
package dev.nodemesh.cni.spec;

import org.jspecify.annotations.NullMarked;
