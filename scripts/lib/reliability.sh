#!/usr/bin/env bash
# The stack of the reliability runs (scripts/test-reliability, scripts/soak, scripts/test-lb,
# scripts/measure-lb): a PostgreSQL cluster and a Redis of their own, N `superpayment serve`
# instances, webhook workers, the Standard Webhooks receiver, nginx; fault injection; and
# the cleanup of every process and the cluster on exit, failure included.
#
# Ports: PostgreSQL 5442 (cluster 15/reliability), Redis 6390, instances 18201.., their
# metrics 18211.., workers' metrics 18221.., nginx 18280, receiver 18290. Sourced after
# scripts/lib/common.sh; call rel_init first.

REL_PG_PORT=5442
REL_PG_CLUSTER=reliability
REL_REDIS_PORT=6390
REL_NGINX_PORT=18280
REL_RECEIVER_PORT=18290
declare -A REL_PIDS=()   # name -> pid of every process started here

# rel_init NAME: a fresh run directory target/reliability/NAME, the binaries, the cleanup trap.
rel_init() {
    REL_DIR="$SP_ROOT/target/reliability/$1"
    rm -rf "$REL_DIR"
    mkdir -p "$REL_DIR/logs"
    REL_FAULTS="$REL_DIR/faults.log"
    REL_ANSWERS="$REL_DIR/answers.jsonl"
    REL_WEBHOOKS="$REL_DIR/webhooks.jsonl"
    : >"$REL_FAULTS"
    REL_STARTED=$SECONDS
    trap rel_cleanup EXIT
    trap 'exit 130' INT TERM
    local profile="${REL_PROFILE:-debug}"
    local flag=()
    [[ $profile == release ]] && flag=(--release)
    say "building superpayment and superpayment-reliability ($profile)"
    cargo build -q "${flag[@]}" -p superpayment-backend -p superpayment-reliability
    SP_BIN="$SP_ROOT/target/$profile/superpayment"
    REL_BIN="$SP_ROOT/target/$profile/superpayment-reliability"
    REL_PYTHON="$("$SP_ROOT/scripts/lib/test-deps.sh" --print | sed -n 's/^PYTHON=//p')"
    command -v redis-server >/dev/null 2>&1 || apt_install redis-server redis-tools
    command -v pg_createcluster >/dev/null 2>&1 || apt_install postgresql postgresql-contrib
    command -v openssl >/dev/null 2>&1 || apt_install openssl

    export DATABASE_URL="postgres://postgres@127.0.0.1:$REL_PG_PORT/superpayment"
    export REDIS_URL="redis://127.0.0.1:$REL_REDIS_PORT"
    export VOUCHER_PEPPER="reliability-pepper-$RANDOM$RANDOM"
    export SIGNING_KEY="reliability-signing-$RANDOM$RANDOM"
    ENCRYPTION_KEY="$(openssl rand -base64 32)"
    ADMIN_TOKEN="$(openssl rand -hex 24)"
    export ENCRYPTION_KEY ADMIN_TOKEN
    # The load comes from 127.0.0.1 with each shopper's address forwarded, as from a load
    # balancer; the per-key limit (600/min) would cap the whole run, so it is off.
    export TRUSTED_PROXIES=127.0.0.1 PAY_RATE_LIMIT_PER_KEY=0
    export SERVE_WORKER=off NO_MIGRATE=true DEMO_SHOP=off LOG_FORMAT=json
    # Webhook retries within seconds, so a run recovers in seconds; receivers on 127.0.0.1.
    export WEBHOOK_RETRY_SCHEDULE="$(printf '250ms,500ms,1s,2s'; printf ',3s%.0s' {1..40})" WEBHOOK_POLL_INTERVAL=200ms
    export WEBHOOK_TIMEOUT=5s WEBHOOK_SHUTDOWN_GRACE=2s WEBHOOK_LOOPBACK_FOR_TESTS=true
}

rel_fault() {
    local line
    line="$(date -u +%H:%M:%S) +$((SECONDS - REL_STARTED))s $*"
    echo "$line" >>"$REL_FAULTS"
    say "fault: $*"
}

# Every process started here, nginx, Redis and the cluster: gone, whatever happened.
rel_cleanup() {
    local status=$?
    trap - EXIT
    local name
    if [[ -n ${REL_LOAD_PID:-} ]]; then kill -9 "$REL_LOAD_PID" 2>/dev/null || true; fi
    for name in "${!REL_PIDS[@]}"; do
        kill -9 "${REL_PIDS[$name]}" 2>/dev/null || true
    done
    if [[ -f ${REL_DIR:-/nonexistent}/nginx.pid ]]; then
        # TERM: the master stops its own workers (a killed master would orphan them).
        local ngx
        ngx="$(cat "$REL_DIR/nginx.pid")"
        kill -TERM "$ngx" 2>/dev/null || true
        wait_for "! kill -0 $ngx" 15 || true
    fi
    redis-cli -p "$REL_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    rel_drop_cluster
    wait 2>/dev/null || true
    exit "$status"
}

rel_drop_cluster() {
    if pg_lsclusters -h 2>/dev/null | awk '{print $1, $2}' | grep -qx "15 $REL_PG_CLUSTER"; then
        pg_dropcluster --stop 15 "$REL_PG_CLUSTER" >/dev/null 2>&1 || true
    fi
}

_pgctl() {
    as_root pg_ctlcluster --skip-systemctl-redirect 15 "$REL_PG_CLUSTER" "$@" 2>/dev/null ||
        as_root pg_ctlcluster 15 "$REL_PG_CLUSTER" "$@"
}

# rel_postgres: the cluster 15/reliability on 5442 with trust auth on loopback, migrated.
rel_postgres() {
    rel_drop_cluster   # left over from an interrupted run
    say "PostgreSQL cluster 15/$REL_PG_CLUSTER on port $REL_PG_PORT"
    as_root pg_createcluster 15 "$REL_PG_CLUSTER" --port "$REL_PG_PORT" >/dev/null
    local etc="/etc/postgresql/15/$REL_PG_CLUSTER"
    printf 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' |
        as_root tee "$etc/pg_hba.conf" >/dev/null
    printf "listen_addresses = '127.0.0.1'\nmax_connections = 200\nshared_buffers = 128MB\n" |
        as_root tee "$etc/conf.d/reliability.conf" >/dev/null
    _pgctl start
    wait_for "pg_isready -q -h 127.0.0.1 -p $REL_PG_PORT" 30
    psql -h 127.0.0.1 -p "$REL_PG_PORT" -U postgres -qc "CREATE DATABASE superpayment"
    "$SP_BIN" migrate >"$REL_DIR/logs/migrate.log" 2>&1
}

rel_postgres_restart() {
    _pgctl restart
    wait_for "pg_isready -q -h 127.0.0.1 -p $REL_PG_PORT" 60
}

rel_redis_start() {
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REL_REDIS_PORT" --save "" --appendonly no \
        --dir "$REL_DIR" --pidfile "$REL_DIR/redis.pid" --logfile "$REL_DIR/logs/redis.log"
    wait_for "[[ \$(redis-cli -p $REL_REDIS_PORT ping) == PONG ]]" 15
}

rel_redis_stop() {
    redis-cli -p "$REL_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    wait_for "! redis-cli -p $REL_REDIS_PORT ping" 15
}

# rel_serve I: instance I on 18200+I (metrics 18210+I); waits for /readyz.
rel_serve() {
    local i="$1"
    BIND="127.0.0.1:$((18200 + i))" METRICS_BIND="127.0.0.1:$((18210 + i))" DATA_DIR="$REL_DIR/data$i" \
        "$SP_BIN" serve >>"$REL_DIR/logs/serve$i.log" 2>&1 &
    REL_PIDS[serve$i]=$!
    wait_for "curl -sf http://127.0.0.1:$((18200 + i))/readyz" 60 || { echo "instance $i did not become ready" >&2; return 1; }
}

# rel_worker I: webhook worker I (metrics on 18220+I).
rel_worker() {
    local i="$1"
    METRICS_BIND="127.0.0.1:$((18220 + i))" "$SP_BIN" worker >>"$REL_DIR/logs/worker$i.log" 2>&1 &
    REL_PIDS[worker$i]=$!
    wait_for "curl -sf http://127.0.0.1:$((18220 + i))/metrics" 30 || { echo "worker $i did not start (logs/worker$i.log)" >&2; return 1; }
}

# rel_kill NAME: kill -9, as a crash or an OOM kill would.
rel_kill() {
    kill -9 "${REL_PIDS[$1]}" 2>/dev/null || true
    wait "${REL_PIDS[$1]}" 2>/dev/null || true
    unset "REL_PIDS[$1]"
}

rel_receiver() {
    "$REL_PYTHON" "$SP_ROOT/reliability/receiver.py" --port "$REL_RECEIVER_PORT" \
        --state "$REL_DIR/state.json" --log "$REL_WEBHOOKS" >>"$REL_DIR/logs/receiver.log" 2>&1 &
    REL_PIDS[receiver]=$!
    wait_for "curl -sf http://127.0.0.1:$REL_RECEIVER_PORT/" 15
}

# rel_setup: the merchant, vouchers and webhook endpoint (through instance 1), then the receiver.
rel_setup() {
    "$REL_BIN" setup --api "http://127.0.0.1:18201" --webhook-url "http://127.0.0.1:$REL_RECEIVER_PORT/webhooks" \
        --vouchers "${1:-400}" --hot "${2:-6}" --out "$REL_DIR/state.json"
    rel_receiver
}

# rel_answers: the number of client answers recorded so far.
rel_answers() { if [[ -f $REL_ANSWERS ]]; then wc -l <"$REL_ANSWERS"; else echo 0; fi; }

# rel_wait_answers N: waits until N answers are recorded (the load is progressing), or the
# load process $REL_LOAD_PID has ended.
rel_wait_answers() {
    local n="$1"
    while (($(rel_answers) < n)); do
        kill -0 "$REL_LOAD_PID" 2>/dev/null || return 0
        sleep 0.2
    done
}

# rel_load LABEL PAYMENTS BASES [ARGS...]: starts the load in the background (REL_LOAD_PID).
rel_load() {
    local label="$1" payments="$2" bases="$3"
    shift 3
    "$REL_BIN" load --state "$REL_DIR/state.json" --base "$bases" --payments "$payments" \
        --label "$label" --answers "$REL_ANSWERS" "$@" &
    REL_LOAD_PID=$!
}

# rel_check: the checks; returns non-zero on a violation.
rel_check() {
    "$REL_BIN" check --state "$REL_DIR/state.json" --answers "$REL_ANSWERS" --receiver-log "$REL_WEBHOOKS" \
        --superpayment "$SP_BIN" --faults "$REL_FAULTS" "$@"
}

# rel_nginx PORT...: nginx on REL_NGINX_PORT in front of the instances on the given ports,
# from deploy/nginx/nginx.conf itself: only its upstream servers, listen port and log path
# are substituted; (re)loaded when already running.
rel_nginx() {
    command -v nginx >/dev/null 2>&1 || apt_install nginx
    local servers="" port
    for port in "$@"; do servers+="        server 127.0.0.1:$port max_fails=3 fail_timeout=10s;\n"; done
    mkdir -p "$REL_DIR/nginx/logs"
    awk -v servers="$servers" -v listen="$REL_NGINX_PORT" -v logfile="$REL_DIR/logs/nginx.access.log" '
        /^ *upstream superpayment \{/ { print; printf "%s", servers; skip = 1; next }
        skip && /^ *server 127\.0\.0\.1:/ { next }
        /^ *\}/ { skip = 0 }
        /^ *listen / { sub(/8080/, listen) }
        /^ *access_log / { sub(/\/var\/log\/nginx\/superpayment\.access\.log/, logfile) }
        { print }' "$SP_ROOT/deploy/nginx/nginx.conf" >"$REL_DIR/nginx/nginx.conf"
    grep -q "listen $REL_NGINX_PORT" "$REL_DIR/nginx/nginx.conf" || { echo "nginx.conf: listen not substituted" >&2; return 1; }
    local cmd=(nginx -c "$REL_DIR/nginx/nginx.conf" -p "$REL_DIR/nginx" -g "pid $REL_DIR/nginx.pid; error_log $REL_DIR/logs/nginx.error.log;")
    if [[ -f $REL_DIR/nginx.pid ]] && kill -0 "$(cat "$REL_DIR/nginx.pid")" 2>/dev/null; then
        "${cmd[@]}" -s reload
    else
        "${cmd[@]}"
        wait_for "curl -sf http://127.0.0.1:$REL_NGINX_PORT/nginx-health" 15
    fi
}
