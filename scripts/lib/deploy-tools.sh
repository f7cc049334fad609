#!/usr/bin/env bash
# Installs the deployment tools of deploy/requirements-tools.txt (hadolint, checkov,
# kubernetes-validate, moto's S3 server, boto3) into a Python venv under
# target/deploy-tools/, once per version of that file; prints the venv's bin directory.
# Safe to run from several processes at once (a lock serialises them).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="${SP_DEPLOY_TOOLS_DIR:-$root/target/deploy-tools}"
req="$root/deploy/requirements-tools.txt"
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
stamp="$dir/.installed-$(sha256sum "$req" | cut -c1-16)"
if [[ ! -f $stamp ]]; then
    source "$root/scripts/lib/common.sh"
    # python3 without python3-venv cannot make a venv (no ensurepip) on a fresh Debian.
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        apt_install python3 python3-venv
    fi
    [[ -x $dir/venv/bin/python ]] || python3 -m venv "$dir/venv" >&2
    say "installing the deployment tools (deploy/requirements-tools.txt) into $dir/venv"
    "$dir/venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req" >&2
    "$dir/venv/bin/hadolint" --version >&2
    rm -f "$dir"/.installed-*
    touch "$stamp"
fi
echo "$dir/venv/bin"
