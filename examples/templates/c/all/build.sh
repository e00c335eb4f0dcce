#!/usr/bin/env bash
# Build {{name}} into a component: build.sh [out.wasm]   (default: ./{{name}}.wasm)
#
# wit-bindgen c generates the bindings, clang and wasi-libc compile a
# wasm32-wasi (preview1) reactor module, and wasm-tools turns it into a
# component with the WASI preview1 adapter.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KW_WIT="$here/wit"
# shellcheck source=toolchain.sh
source "$here/toolchain.sh"
out="$(kw_out_path "${1:-$here/{{name}}.wasm}")"

ensure_c_compiler
ensure_wit_bindgen_cli
ensure_adapter
ensure_wasm_tools

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$KW_WIT_BINDGEN" c "$KW_WIT" --world {{world}} --out-dir "$work/gen" >"$work/gen.log" 2>&1 ||
    { cat "$work/gen.log" >&2; kw_die "wit-bindgen c failed"; }
"$KW_CLANG" --target=wasm32-wasi -mexec-model=reactor -Oz -std=c11 -Wall -Wextra \
    -Wno-unused-parameter -I "$work/gen" -I "$here" \
    "$here/plugin.c" "$here/kw.c" "$work/gen/{{world}}.c" "$work/gen/{{world}}_component_type.o" \
    -o "$work/core.wasm"
"$KW_WASM_TOOLS" component new "$work/core.wasm" \
    --adapt "wasi_snapshot_preview1=$KW_ADAPTER" -o "$out"
kw_check_component "$out" {{interface}}
