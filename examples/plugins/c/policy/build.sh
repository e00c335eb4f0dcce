#!/usr/bin/env bash
# Build the C example policy plugin into a component: build.sh <out.wasm>
#
# wit-bindgen c generates the bindings, Debian's clang and wasi-libc compile a
# wasm32-wasi (preview1) reactor module, and wasm-tools turns it into a
# component with the WASI preview1 adapter.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../../toolchain.sh
source "$here/../../toolchain.sh"
out="$(kw_out_path "$@")"
world=policy
sources=("$here/policy.c")

ensure_c_compiler
ensure_wit_bindgen_cli
ensure_adapter
ensure_wasm_tools

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$KW_WIT_BINDGEN" c "$KW_WIT" --world "$world" --out-dir "$work/gen" >"$work/gen.log" 2>&1 ||
    { cat "$work/gen.log" >&2; kw_die "wit-bindgen c failed"; }
# -mexec-model=reactor: a library with exports, no main. -Oz: small output.
"$KW_CLANG" --target=wasm32-wasi -mexec-model=reactor -Oz -std=c11 \
    -Wall -Wextra -Werror -Wno-unused-parameter \
    -I "$work/gen" -I "$here/../common" \
    "${sources[@]}" "$here/../common/kw.c" \
    "$work/gen/$world.c" "$work/gen/${world}_component_type.o" \
    -o "$work/core.wasm"
"$KW_WASM_TOOLS" component new "$work/core.wasm" \
    --adapt "wasi_snapshot_preview1=$KW_ADAPTER" -o "$out"
kw_check_component "$out" decider
