#!/usr/bin/env bash
# Shared by the PostgreSQL operator scripts: finding the server binaries and running them as
# the owner of the data directory.
set -euo pipefail

# PG_BIN: the directory of pg_ctl, pg_basebackup...; default the newest Debian install or PATH.
if [[ -z ${PG_BIN:-} ]]; then
    PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
    [[ -n $PG_BIN ]] || PG_BIN="$(dirname "$(command -v pg_ctl)")"
fi
export PG_BIN

# PG_OS_USER: who owns and runs the data directories. PostgreSQL refuses to run as root, so
# root runs them as the `postgres` user; anyone else runs them as themselves.
if [[ -z ${PG_OS_USER:-} ]]; then
    if [[ $(id -u) -eq 0 ]]; then PG_OS_USER=postgres; else PG_OS_USER="$(id -un)"; fi
fi
export PG_OS_USER

pg_as_owner() {
    if [[ $(id -un) == "$PG_OS_USER" ]]; then "$@"; else runuser -u "$PG_OS_USER" -- "$@"; fi
}

die() { echo "$(basename "$0"): $*" >&2; exit 2; }

# now_ms: wall-clock milliseconds, for the durations the scripts print.
now_ms() { date +%s%3N; }
