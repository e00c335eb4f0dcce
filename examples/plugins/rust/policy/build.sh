#!/usr/bin/env bash
# Build the Rust example policy plugin into a component: build.sh <out.wasm>
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../../toolchain.sh
source "$here/../../toolchain.sh"
out="$(kw_out_path "$@")"

ensure_rust_target
target_dir="${KEYWARD_EXAMPLES_TARGET_DIR:-$KW_REPO/target/examples}"
locked=()
[[ -f "$here/Cargo.lock" ]] && locked=(--locked)
CARGO_TARGET_DIR="$target_dir" cargo build --quiet "${locked[@]}" \
    --manifest-path "$here/Cargo.toml" --target wasm32-wasip2 --release
# wasm32-wasip2 links a component directly (wasm-component-ld): no adapter step.
cp "$target_dir/wasm32-wasip2/release/keyward_example_policy.wasm" "$out"
kw_check_component "$out" decider
