/**
 * Enrolment state: which pods each node proxy says it has enrolled ({@link
 * dev.nodemesh.control.enrolment.EnrolmentRegistry}), reported over {@link
 * dev.nodemesh.control.enrolment.EnrolmentService}, so a source can mark a workload captured only
 * once its node serves it.
 */
@NullMarked
package dev.nodemesh.control.enrolment;

import org.jspecify.annotations.NullMarked;
