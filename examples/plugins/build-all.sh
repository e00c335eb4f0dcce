#!/usr/bin/env bash
# Build every example plugin into one directory:
#
#   examples/plugins/build-all.sh <outdir> [lang...]
#
# writes <outdir>/example-<lang>-<role>.wasm for lang in rust, python,
# javascript, c (or only the languages named) and role in policy, renderer.
# <role> is also the world name and the conformance case directory:
# tests/conformance/<role>. Toolchains are installed on first use into
# ~/.cache/keyward/tools (see toolchain.sh). Every plugin is attempted; the
# exit status is non-zero when any failed, and the failures are listed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ $# -lt 1 || -z "$1" ]]; then
    echo "usage: $0 <outdir> [rust|python|javascript|c ...]" >&2
    exit 2
fi
outdir="$1"
shift
langs=("$@")
((${#langs[@]})) || langs=(rust python javascript c)
mkdir -p "$outdir"

failed=()
for lang in "${langs[@]}"; do
    [[ -d "$here/$lang" ]] || { echo "unknown language: $lang" >&2; exit 2; }
    for role in policy renderer; do
        name="example-$lang-$role"
        start=$SECONDS
        echo "[keyward-examples] building $name" >&2
        if "$here/$lang/$role/build.sh" "$outdir/$name.wasm"; then
            echo "[keyward-examples] $name: $(wc -c <"$outdir/$name.wasm") bytes in $((SECONDS - start)) s" >&2
        else
            rm -f "$outdir/$name.wasm"
            failed+=("$name")
        fi
    done
done

if ((${#failed[@]})); then
    echo "[keyward-examples] FAILED: ${failed[*]}" >&2
    exit 1
fi
