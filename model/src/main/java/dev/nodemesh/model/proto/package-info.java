/**
 * What every kind's xDS decoder shares: the problem list of one response ({@link
 * dev.nodemesh.model.proto.ResourceDecoder}) and the field checks of one resource ({@link
 * dev.nodemesh.model.proto.ProtoFields}). Each kind's own encode and decode live in its kind file
 * in {@code model.kind}, beside its descriptor.
 */
@NullMarked
package dev.nodemesh.model.proto;

import org.jspecify.annotations.NullMarked;
