/**
 * install-cni: puts the plugin into the node's CNI bin dir, chains it last in the runtime's primary
 * conflist, keeps it there when the primary CNI rewrites its file, and takes it out on uninstall.
 * {@link dev.nodemesh.cni.install.ConfListEdit} decides (pure, no I/O); {@link
 * dev.nodemesh.cni.install.InstallCni} reads and writes files.
 */
@NullMarked
package dev.nodemesh.cni.install;

import org.jspecify.annotations.NullMarked;
