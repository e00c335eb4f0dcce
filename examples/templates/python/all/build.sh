#!/usr/bin/env bash
# Build {{name}} into a component: build.sh [out.wasm]   (default: ./{{name}}.wasm)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KW_WIT="$here/wit"
# shellcheck source=toolchain.sh
source "$here/toolchain.sh"
out="$(kw_out_path "${1:-$here/{{name}}.wasm}")"

ensure_componentize_py
# Build from a copy: componentize-py leaves __pycache__ next to the sources.
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp "$here"/*.py "$stage/"
"$KW_COMPONENTIZE_PY" --wit-path "$KW_WIT" --world {{world}} \
    componentize --python-path "$stage" app --output "$stage/app.wasm" >&2
# componentize-py records no Python in the component's producers section; the
# host sizes its sandbox limits by guest language, so say it.
ensure_wasm_tools
"$KW_WASM_TOOLS" metadata add --language "Python=" \
    --processed-by "componentize-py=$KW_COMPONENTIZE_PY_VERSION" "$stage/app.wasm" -o "$out"
kw_check_component "$out" {{interface}}
