#!/usr/bin/env bash
# Build {{name}} into a component: build.sh [out.wasm]   (default: ./{{name}}.wasm)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KW_WIT="$here/wit"
# shellcheck source=toolchain.sh
source "$here/toolchain.sh"
out="$(kw_out_path "${1:-$here/{{name}}.wasm}")"

ensure_rust_target
locked=()
[[ -f "$here/Cargo.lock" ]] && locked=(--locked)
CARGO_TARGET_DIR="$here/target" cargo build --quiet "${locked[@]}" \
    --manifest-path "$here/Cargo.toml" --target wasm32-wasip2 --release
cp "$here/target/wasm32-wasip2/release/{{crate}}.wasm" "$out"
kw_check_component "$out" {{interface}}
