/**
 * The node agent: enrols pods (interception rules plus in-pod listeners) on AddPod/DelPod/Snapshot
 * calls that arrive over a Unix-socket gRPC service.
 */
@NullMarked
package dev.nodemesh.proxy.agent;

import org.jspecify.annotations.NullMarked;
