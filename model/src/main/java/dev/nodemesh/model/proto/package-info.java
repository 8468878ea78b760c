/**
 * Conversion between the config records and their protobuf form on the xDS wire: the control plane
 * encodes ({@link dev.nodemesh.model.proto.ProtoEncoder}), the node proxy decodes and validates
 * ({@link dev.nodemesh.model.proto.ResourceDecoder}); kept beside the records so both sides change
 * together.
 */
@NullMarked
package dev.nodemesh.model.proto;

import org.jspecify.annotations.NullMarked;
