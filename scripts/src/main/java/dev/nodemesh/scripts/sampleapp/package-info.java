/** A plain-JDK HTTP and TCP echo app that plays a user's workload in local mode and benchmarks. */
@NullMarked
package dev.nodemesh.scripts.sampleapp;

import org.jspecify.annotations.NullMarked;
