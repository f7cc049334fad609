#!/usr/bin/env bash
# Shared helpers of the scripts: repo root, logging, root/apt access, service start-up.
set -euo pipefail

SP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export SP_ROOT

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else echo "need root to run: $*" >&2; return 1; fi
}

_apt_updated=""
# apt_install PKG...: installs the Debian packages that are missing (and only those).
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
    if [[ -z $_apt_updated ]] && ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        _apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
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

ensure_rust() {
    if ! command -v cargo >/dev/null 2>&1; then
        [[ -x $HOME/.cargo/bin/cargo ]] && export PATH="$HOME/.cargo/bin:$PATH"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        apt_install cargo rustc
    fi
}

# PostgreSQL on 127.0.0.1:5432 with trust auth for local connections (the test suite's default).
ensure_postgres() {
    if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; then return 0; fi
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
        apt_install postgresql postgresql-contrib
    fi
    local version
    version="$(ls /etc/postgresql | sort -V | tail -1)"
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
        # Local development and CI only: the tests connect as postgres without a password.
        as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    fi
    say "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || as_root pg_ctlcluster "$version" main start
    wait_for "pg_isready -q -h 127.0.0.1 -p 5432" 30 || { echo "PostgreSQL did not start" >&2; return 1; }
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
