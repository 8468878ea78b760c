/**
 * What the demo shows from Prometheus: the per-node latency table (the "Node latency" dashboard's
 * own queries) and a PNG chart of latency over the run.
 */
@NullMarked
package dev.nodemesh.scripts.demo;

import org.jspecify.annotations.NullMarked;
