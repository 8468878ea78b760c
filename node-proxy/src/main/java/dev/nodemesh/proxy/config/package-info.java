/**
 * The proxy's current config: the {@link dev.nodemesh.model.config.ConfigSnapshot} it routes by,
 * held for atomic swaps ({@code SnapshotHolder}) and, in file mode, reloaded when its directory
 * changes ({@code ConfigWatcher}). The records themselves live in the model module.
 */
@NullMarked
package dev.nodemesh.proxy.config;

import org.jspecify.annotations.NullMarked;
