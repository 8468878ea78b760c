/**
 * The chained CNI plugin and install-cni. Empty until the pod-enrolment issue; local mode calls the
 * node agent directly until then.
 */
@NullMarked
package dev.nodemesh.cni;

import org.jspecify.annotations.NullMarked;
