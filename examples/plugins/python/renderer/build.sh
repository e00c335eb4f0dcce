#!/usr/bin/env bash
# Build the Python example renderer plugin into a component: build.sh <out.wasm>
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../../toolchain.sh
source "$here/../../toolchain.sh"
out="$(kw_out_path "$@")"

if kw_cache_lookup python-renderer "$0" "$here"/*.py "$KW_WIT"/*.wit; then
    cp "$KW_CACHED" "$out"
    kw_check_component "$out" render
    exit 0
fi
ensure_componentize_py
# Build from a copy: componentize-py leaves __pycache__ next to the sources.
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp "$here"/*.py "$stage/"
"$KW_COMPONENTIZE_PY" --wit-path "$KW_WIT" --world renderer \
    componentize --python-path "$stage" app --output "$stage/app.wasm" >&2
# componentize-py records no Python in the component's producers section; the
# host sizes its sandbox limits by guest language, so say it.
ensure_wasm_tools
"$KW_WASM_TOOLS" metadata add --language "Python=" \
    --processed-by "componentize-py=$KW_COMPONENTIZE_PY_VERSION" "$stage/app.wasm" -o "$out"
kw_cache_store "$out"
kw_check_component "$out" render
