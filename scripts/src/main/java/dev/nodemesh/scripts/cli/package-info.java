/** The nodemesh launcher: one picocli command with a subcommand per role. */
@NullMarked
package dev.nodemesh.scripts.cli;

import org.jspecify.annotations.NullMarked;
