#!/usr/bin/env bash
# Shared helpers of the scripts: repo root, logging, root/apt access, service start-up.
set -euo pipefail

SP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export SP_ROOT

# Every step's heading carries the time since the outermost script started (SP_T0 is
# inherited by the scripts it runs), so a long run's log shows where its minutes went.
SP_T0="${SP_T0:-$(date +%s)}"
export SP_T0
say() {
    local t=$(($(date +%s) - SP_T0))
    printf '\033[1m==> [%dm%02ds] %s\033[0m\n' $((t / 60)) $((t % 60)) "$*" >&2
}

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else echo "need root to run: $*" >&2; return 1; fi
}

_apt_updated=""
# apt_update_once: refreshes the package lists, at most once per script run.
apt_update_once() {
    [[ -n $_apt_updated ]] && return 0
    say "refreshing the Debian package lists (apt-get update)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    _apt_updated=1
}

# apt_install PKG...: installs the Debian packages that are missing (and only those).
# The package lists are refreshed first when apt does not know a package, when they are
# more than a day old (a fresh install's lists lack the point releases and security
# updates: rustc-web 1.96 is only in bookworm-security), and once more if the install
# fails on stale lists.
apt_install() {
    local pkg missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "missing packages ${missing[*]} and no apt-get to install them" >&2
        return 1
    fi
    say "installing ${missing[*]}"
    if ! apt-cache show "${missing[@]}" >/dev/null 2>&1 ||
        [[ -z $(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 -print -quit 2>/dev/null) ]]; then
        apt_update_once
    fi
    local apt=(as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}")
    if ! "${apt[@]}" >/dev/null; then
        [[ -n $_apt_updated ]] && return 1
        apt_update_once
        "${apt[@]}" >/dev/null
    fi
}

# Waits up to $2 seconds for command $1 to succeed.
wait_for() {
    local cmd="$1" secs="${2:-30}" i
    for ((i = 0; i < secs * 10; i++)); do
        if eval "$cmd" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    return 1
}

# The workspace's minimum Rust version (rust-version in Cargo.toml).
SP_RUST_MIN="$(sed -n 's/^rust-version *= *"\(.*\)"/\1/p' "$SP_ROOT/Cargo.toml" | head -1)"
SP_RUST_MIN="${SP_RUST_MIN:-1.85}"

# _version_ge A B: true when version A >= version B.
_version_ge() { [[ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" == "$2" ]]; }

# _rust_ok DIR: true when DIR/cargo and DIR/rustc (or the rustc that cargo would run) are
# at least SP_RUST_MIN. DIR empty: the cargo and rustc on PATH.
_rust_ok() {
    local dir="${1:+$1/}" v tool
    for tool in cargo rustc; do
        v="$("${dir}$tool" --version 2>/dev/null | awk '{print $2}')" || return 1
        [[ -n $v ]] && _version_ge "${v%%-*}" "$SP_RUST_MIN" || return 1
    done
}

# ensure_rust: a cargo and rustc >= SP_RUST_MIN, and a C compiler for build scripts (ring,
# libsqlite3-sys). Order: what is on PATH, then rustup's ~/.cargo/bin, then Debian's
# rustc-web toolchain (rustc/cargo 1.96 from bookworm-security, with rustfmt and clippy;
# Debian's own `cargo`/`rustc` packages are 1.63, too old for this workspace).
ensure_rust() {
    if ! _rust_ok && [[ -x $HOME/.cargo/bin/cargo ]] && _rust_ok "$HOME/.cargo/bin"; then
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    if ! _rust_ok; then
        say "no cargo/rustc >= $SP_RUST_MIN found: using Debian's rustc-web toolchain"
        apt_install rustc-web cargo-web rustfmt-web rust-web-clippy gcc libc6-dev pkg-config
        if ! _rust_ok /usr/bin; then
            echo "Debian's rustc-web is $(/usr/bin/rustc --version 2>/dev/null); this workspace needs $SP_RUST_MIN" >&2
            return 1
        fi
        # In front of an older rustup toolchain, and the same compiler for cargo's subtools.
        export PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
    fi
    hash -r
    command -v cc >/dev/null 2>&1 || apt_install gcc libc6-dev
}

# ensure_cargo_tool fmt|clippy: true when `cargo fmt` / `cargo clippy` work, installing
# them when possible (rustup component, or Debian's package beside rustc-web). Otherwise
# prints why and returns 1 so the caller can skip that step loudly.
ensure_cargo_tool() {
    local sub="$1" component deb
    case $sub in
        fmt) component=rustfmt deb=rustfmt-web ;;
        clippy) component=clippy deb=rust-web-clippy ;;
        *) echo "ensure_cargo_tool: unknown tool $sub" >&2; return 2 ;;
    esac
    cargo "$sub" --version >/dev/null 2>&1 && return 0
    if [[ "$(command -v cargo)" == /usr/bin/cargo ]]; then
        apt_install "$deb" || true
    elif command -v rustup >/dev/null 2>&1; then
        say "installing the rustup component $component"
        rustup component add "$component" || true
    fi
    cargo "$sub" --version >/dev/null 2>&1 && return 0
    echo "cargo $sub is not available for $(cargo --version) and could not be installed" >&2
    return 1
}

# ensure_node [MAJOR]: node and npm on PATH, node at least MAJOR (default 18). Debian 12
# ships Node.js 18 only; where a newer one is needed (playwright-core needs 20) and none is
# installed, the official build comes from the npm registry's node-linux-<arch> package,
# pinned to SP_NODE_VERSION, under target/tools/ (npm itself keeps running on it).
SP_NODE_VERSION="${SP_NODE_VERSION:-20.20.2}"
_node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
ensure_node() {
    local want="${1:-18}" arch dir
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        apt_install nodejs npm
        hash -r
    fi
    (($(_node_major) >= want)) && return 0
    case "$(uname -m)" in
        x86_64) arch=x64 ;;
        aarch64) arch=arm64 ;;
        *) echo "Node.js $(node --version) is older than $want and no build is known for $(uname -m)" >&2; return 1 ;;
    esac
    dir="$SP_ROOT/target/tools/node-$SP_NODE_VERSION"
    if [[ ! -x $dir/node_modules/node-linux-$arch/bin/node ]]; then
        say "Node.js $(node --version) is older than $want: installing Node.js $SP_NODE_VERSION (npm package node-linux-$arch)"
        mkdir -p "$dir"
        npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error "node-linux-$arch@$SP_NODE_VERSION" >&2
    fi
    export PATH="$dir/node_modules/node-linux-$arch/bin:$PATH"
    hash -r
    (($(_node_major) >= want)) || { echo "Node.js $want or newer could not be installed" >&2; return 1; }
}

# True when PostgreSQL on 127.0.0.1:5432 lets user postgres in without a password.
_pg_trusts() {
    env -u PGPASSWORD PGPASSFILE=/dev/null psql -w -h 127.0.0.1 -p 5432 -U postgres -d postgres \
        -Atc 'select 1' >/dev/null 2>&1
}

# _pg_ctl VERSION ACTION: pg_ctlcluster on VERSION/main; without systemd (containers,
# chroots) it must not redirect to systemctl.
_pg_ctl() {
    as_root pg_ctlcluster --skip-systemctl-redirect "$1" main "$2" 2>/dev/null || as_root pg_ctlcluster "$1" main "$2"
}

# PostgreSQL on 127.0.0.1:5432 with trust auth for local TCP connections (the test suite's
# default): installs Debian's server when there is none, adds the trust lines to pg_hba.conf
# when a running server still asks for a password (then reloads it), starts it when stopped.
ensure_postgres() {
    if command -v psql >/dev/null 2>&1 && _pg_trusts; then return 0; fi
    if ! ls -d /etc/postgresql/*/main >/dev/null 2>&1; then
        apt_install postgresql postgresql-contrib
    fi
    local version
    version="$(ls /etc/postgresql | sort -V | tail -1)"
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    if ! as_root grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
        # Local development and CI only: the tests connect as postgres without a password.
        say "PostgreSQL $version: trusting local TCP connections ($hba)"
        as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    fi
    if pg_isready -q -h 127.0.0.1 -p 5432; then
        say "reloading PostgreSQL $version (pg_hba.conf)"
        _pg_ctl "$version" reload
    else
        say "starting PostgreSQL $version"
        _pg_ctl "$version" start
        wait_for "pg_isready -q -h 127.0.0.1 -p 5432" 30 || { echo "PostgreSQL did not start" >&2; return 1; }
    fi
    wait_for _pg_trusts 10 || {
        echo "PostgreSQL on 127.0.0.1:5432 does not let user postgres in without a password;" >&2
        echo "is it the cluster $version/main configured in $hba?" >&2
        return 1
    }
}

ensure_redis() {
    if command -v redis-cli >/dev/null 2>&1 && [[ $(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null) == PONG ]]; then return 0; fi
    command -v redis-server >/dev/null 2>&1 || apt_install redis-server redis-tools
    say "starting Redis"
    as_root mkdir -p /var/lib/redis /var/log/redis
    as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/superpayment.log
    wait_for "[[ \$(redis-cli -h 127.0.0.1 -p 6379 ping) == PONG ]]" 15 || { echo "Redis did not start" >&2; return 1; }
}
