#!/usr/bin/env bash
# Installs what the webhook, email and documentation tests run besides cargo: a Python venv
# and a Node package directory, both with the official Standard Webhooks library, and in
# the venv aiosmtpd (the SMTP server the email tests send to), under target/test-deps/. Idempotent and quick when everything is in place; safe to run from
# several test processes at once (a lock serialises them).
#
#   scripts/lib/test-deps.sh          install if missing, print nothing else
#   scripts/lib/test-deps.sh --print  also print the paths (PYTHON=..., NODE_PATH=...)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="${SP_TEST_DEPS_DIR:-$root/target/test-deps}"
py_version="1.1.0"   # standardwebhooks on PyPI
npm_version="1.1.1"  # standardwebhooks on npm
smtpd_version="1.4.6" # aiosmtpd on PyPI
mkdir -p "$dir"

exec 9>"$dir/.lock"
flock 9

stamp="$dir/.installed-py$py_version-npm$npm_version-smtpd$smtpd_version"
if [[ ! -f $stamp ]]; then
    # A fresh Debian has neither: python3 without python3-venv cannot make a venv (no
    # ensurepip), and Node.js and npm are separate packages.
    source "$root/scripts/lib/common.sh"
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        apt_install python3 python3-venv
    fi
    ensure_node
    if [[ ! -x $dir/venv/bin/python ]]; then
        python3 -m venv "$dir/venv" >&2
    fi
    "$dir/venv/bin/python" -m pip install -q --disable-pip-version-check "standardwebhooks==$py_version" "aiosmtpd==$smtpd_version" >&2
    mkdir -p "$dir/node"
    if [[ ! -f $dir/node/package.json ]]; then
        printf '{"name": "superpayment-test-deps", "private": true}\n' >"$dir/node/package.json"
    fi
    (cd "$dir/node" && npm install --silent --no-audit --no-fund "standardwebhooks@$npm_version" >&2)
    "$dir/venv/bin/python" -c 'import standardwebhooks, aiosmtpd' >&2
    NODE_PATH="$dir/node/node_modules" node -e 'require("standardwebhooks")' >&2
    touch "$stamp"
fi

if [[ ${1:-} == --print ]]; then
    echo "PYTHON=$dir/venv/bin/python"
    echo "NODE_PATH=$dir/node/node_modules"
fi
