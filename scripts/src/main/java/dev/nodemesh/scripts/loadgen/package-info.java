/**
 * A fixed-rate (open-loop) HTTP/1.1 and h2c load generator for the benchmarks: requests are sent at
 * intended times and latency is measured from those times, so a stall counts for every request it
 * holds back (no coordinated omission).
 */
@NullMarked
package dev.nodemesh.scripts.loadgen;

import org.jspecify.annotations.NullMarked;
