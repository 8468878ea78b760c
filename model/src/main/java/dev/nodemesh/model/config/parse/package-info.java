/**
 * The YAML parsers of the resource kinds, one class per kind, over the shared field readers in
 * {@code YamlFields}. Error texts are part of the contract (tests and users read them).
 */
@NullMarked
package dev.nodemesh.model.config.parse;

import org.jspecify.annotations.NullMarked;
