#!/usr/bin/env bash
# Builds Rust for wasm32-unknown-unknown on any machine this project supports.
#
# Source it, then call `wasm_cargo <cargo subcommand> [args...]`, e.g.
#   source scripts/lib/wasm-toolchain.sh
#   wasm_cargo build -p superpayment-core --release
#
# With a rustup toolchain that has the wasm32 target, plain cargo is used. Without one
# (offline machines, or rustup unable to download the target) Debian's rustc-web toolchain
# is installed and std is compiled from its shipped sources (-Z build-std). Both routes write
# to $WASM_TARGET_DIR (default <workspace>/target/wasm) so the native target dir is never
# rebuilt from scratch and callers find the .wasm in one place:
#   $WASM_TARGET_DIR/wasm32-unknown-unknown/<profile>/<crate>.wasm
set -euo pipefail

WASM_TARGET=wasm32-unknown-unknown
WASM_WORKSPACE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WASM_TARGET_DIR="${WASM_TARGET_DIR:-$WASM_WORKSPACE_ROOT/target/wasm}"
# rust-web-llvm provides /usr/bin/rust-lld (-> lld-22), the default wasm linker; it is only a
# Recommends of rustc-web, so it is named explicitly for --no-install-recommends.
WASM_DEBIAN_PACKAGES="${WASM_DEBIAN_PACKAGES:-rustc-web cargo-web rust-web-src rust-web-llvm lld-22}"

# True when the active rustup toolchain already ships the wasm32 std.
wasm_has_rustup_target() {
    local installed
    # Captured first: under pipefail, `rustup ... | grep -q` can fail on SIGPIPE.
    installed="$(rustup target list --installed 2>/dev/null || true)"
    grep -qx "$WASM_TARGET" <<<"$installed"
}

wasm_as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "wasm-toolchain: need root to run: $*" >&2
        return 1
    fi
}

# Installs the Debian toolchain unless every package is already there; refreshes the package
# lists only when apt does not know the packages yet.
wasm_ensure_debian_toolchain() {
    local pkg missing=()
    for pkg in $WASM_DEBIAN_PACKAGES; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "wasm-toolchain: no rustup wasm32 target and no apt-get to install ${missing[*]}." >&2
        echo "wasm-toolchain: run 'rustup target add $WASM_TARGET' instead." >&2
        return 1
    fi
    echo "wasm-toolchain: installing ${missing[*]}" >&2
    if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
        wasm_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    fi
    wasm_as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# wasm_cargo <subcommand> [args...]: cargo for wasm32-unknown-unknown. The target flags go
# right after the subcommand so arguments after a `--` keep their meaning.
wasm_cargo() {
    if [[ $# -eq 0 ]]; then
        echo "usage: wasm_cargo <cargo subcommand> [args...]" >&2
        return 2
    fi
    local subcommand="$1"
    shift
    if wasm_has_rustup_target; then
        CARGO_TARGET_DIR="$WASM_TARGET_DIR" \
            cargo "$subcommand" --target "$WASM_TARGET" "$@"
    else
        wasm_ensure_debian_toolchain
        # RUSTC_BOOTSTRAP unlocks -Z build-std on Debian's stable compiler; build-std needs the
        # sources from rust-web-src because Debian ships no prebuilt wasm32 std.
        RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
            CARGO_TARGET_DIR="$WASM_TARGET_DIR" \
            /usr/bin/cargo "$subcommand" --target "$WASM_TARGET" \
            -Z build-std=std,panic_abort "$@"
    fi
}
