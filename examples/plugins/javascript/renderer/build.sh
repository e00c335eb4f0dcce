#!/usr/bin/env bash
# Build the JavaScript example renderer plugin into a component: build.sh <out.wasm>
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../../toolchain.sh
source "$here/../../toolchain.sh"
out="$(kw_out_path "$@")"

if kw_cache_lookup javascript-renderer "$0" "$here"/*.js "$KW_WIT"/*.wit; then
    cp "$KW_CACHED" "$out"
    kw_check_component "$out" render
    exit 0
fi
ensure_componentize_js
# `-d http fetch-event`: the plugin needs neither; disabling them keeps wasi:http
# out of the component's imports (the sandbox has no network).
"$KW_COMPONENTIZE_JS" "$here/renderer.js" --wit "$KW_WIT" --world-name renderer \
    -d http fetch-event --out "$out" >&2
kw_cache_store "$out"
kw_check_component "$out" render
