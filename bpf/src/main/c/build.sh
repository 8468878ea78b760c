#!/usr/bin/env bash
# Compiles every program in this folder (one per file) and links them into one object,
# nodemesh.o, so the loader opens a single object whose programs share one copy of each map.
# Called by the Maven build (bpf/pom.xml) with the output folder; the object ships in the jar.
set -euo pipefail
src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:?usage: build.sh OUTPUT_DIR}"
PATH="$PATH:/usr/sbin:/sbin"

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "bpf build: '$1' not found. Run scripts/setup to install clang, llvm, libbpf-dev and bpftool." >&2
    exit 1
  fi
}
need clang
need bpftool
if [[ ! -f /usr/include/bpf/bpf_helpers.h ]]; then
  echo "bpf build: /usr/include/bpf/bpf_helpers.h missing. Run scripts/setup (libbpf-dev)." >&2
  exit 1
fi

mkdir -p "$out/obj"
objs=()
for c in "$src"/*.c; do
  o="$out/obj/$(basename "${c%.c}").o"
  # The uapi headers (linux/bpf.h) need asm/types.h, which Debian keeps under the multiarch dir.
  clang -O2 -g -target bpf -Wall -Wextra -Werror \
    -idirafter "/usr/include/$(uname -m)-linux-gnu" -c "$c" -o "$o"
  objs+=("$o")
done
bpftool gen object "$out/nodemesh.o" "${objs[@]}"
rm -rf "$out/obj"
