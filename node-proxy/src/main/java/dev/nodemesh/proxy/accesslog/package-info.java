/**
 * The access log: one JSON line per L4 connection when it ends, queued by the event loops and
 * written by one thread of its own ({@code nodemesh-accesslog}).
 */
@NullMarked
package dev.nodemesh.proxy.accesslog;

import org.jspecify.annotations.NullMarked;
