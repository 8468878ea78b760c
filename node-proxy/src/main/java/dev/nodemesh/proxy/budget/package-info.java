/**
 * Per-pod limits that keep one pod from starving the others: a budget of concurrent connections per
 * enrolled pod and direction ({@link dev.nodemesh.proxy.budget.PodBudgets}), the accept path's
 * answer to fd exhaustion ({@link dev.nodemesh.proxy.budget.AcceptGuard}) and the process's fd
 * limit ({@link dev.nodemesh.proxy.budget.FdLimit}).
 */
@NullMarked
package dev.nodemesh.proxy.budget;

import org.jspecify.annotations.NullMarked;
