#!/usr/bin/env bash
# Build {{name}} into a component: build.sh [out.wasm]   (default: ./{{name}}.wasm)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KW_WIT="$here/wit"
# shellcheck source=toolchain.sh
source "$here/toolchain.sh"
out="$(kw_out_path "${1:-$here/{{name}}.wasm}")"

ensure_componentize_js
# `-d http fetch-event`: the sandbox has no network; without this the
# component imports wasi:http and the host refuses to load it.
"$KW_COMPONENTIZE_JS" "$here/plugin.js" --wit "$KW_WIT" --world-name {{world}} \
    -d http fetch-event --out "$out" >&2
kw_check_component "$out" {{interface}}
