#!/usr/bin/env python3
"""Instructions per payment and per verify in the server process (callgrind), with a profile.

scripts/bench-instructions builds the release binary and runs this file. Per repetition it
starts one `superpayment serve` under `valgrind --tool=callgrind` on a scratch database,
warms it (API keys cached, prepared statements made, pool connections open), and then runs
four phases on one keep-alive connection, one request after the other:

    payments  N1, payments  N2   (fresh order id, Idempotency-Key and voucher each)
    verifies  N1, verifies  N2   (by the ids of the payments just made, each once)

Before a phase the counters are zeroed (`callgrind_control --zero`) and after it they are
dumped (`callgrind_control --dump`), so each dump holds exactly one phase. The figure is

    instructions per request = (Ir(N2) - Ir(N1)) / (N2 - N1)

so whatever a phase costs once (the control requests themselves, a cache refilled on the
first request) cancels out. Two repetitions give the spread. The profile splits the same
difference into buckets by function name (see BUCKETS). Figures go to
target/bench/instructions.json; targets are printed, never asserted.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench as B  # noqa: E402

sys.setrecursionlimit(20000)

OUT = B.OUT
CG = OUT / "callgrind"
TARGETS = {"instructions_per_payment": 400_000, "instructions_per_verify": 150_000}

# Buckets by function name. A function goes to the bucket whose pattern matches earliest in
# its (demangled) name, so `drop_in_place<sea_orm::...>` is sea-orm's and
# `<Payment as serde::Serialize>::serialize` is JSON's; ties go to the earlier bucket.
BUCKETS = [
    ("allocation", "allocation and memory copies (malloc/free or mimalloc, memcpy/memmove/memset)",
     r"\b(malloc|free|realloc|calloc|cfree|_int_malloc|_int_free|_int_realloc|malloc_consolidate|"
     r"unlink_chunk|tcache_\w+|__libc_\w*alloc\w*|__rust_(alloc|dealloc|realloc|alloc_zeroed)|__rdl_\w+|"
     r"__mem(cpy|move|set|cmp)\w*|mem(cpy|move|set|cmp)|__memcpy_\w+|__memmove_\w+|__memset_\w+|"
     r"alloc::raw_vec|alloc::alloc|_?mi_\w+|mimalloc::\w+)\b"),
    ("json", "JSON (serde, serde_json)", r"\b(serde_json|serde|serde_core)::"),
    ("crypto", "crypto and hashing (HMAC, SHA-2, AES-GCM, Argon2, rustls, ring)",
     r"\b(hmac|sha2|sha1|digest|aes|aes_gcm|ghash|polyval|ctr|argon2|blake2|ring|rustls|"
     r"aws_lc_rs|subtle|rand|rand_core|rand_chacha|getrandom)::|\bsha256_\w+|\bsha2::"),
    ("logging", "logging and metrics (tracing, tracing-subscriber, metrics)",
     r"\b(tracing|tracing_core|tracing_subscriber|tracing_log|sharded_slab|metrics|"
     r"metrics_exporter_prometheus|metrics_util)::"),
    ("sqlx", "PostgreSQL protocol (sqlx)", r"\b(sqlx_postgres|sqlx_core|sqlx)::"),
    ("seaorm", "query building and mapping (sea-orm, sea-query)",
     r"\b(sea_orm|sea_query|sea_query_binder)::"),
    ("redis", "Redis (redis, governor)", r"\b(redis|governor|combine)::"),
    ("auth", "auth and key cache (keys, auth, moka)",
     r"\bsuperpayment_backend::(auth|keys|secret)::|\b(moka|crossbeam_epoch|crossbeam_channel|"
     r"quanta)::"),
    ("http", "HTTP parsing and routing (hyper, httparse, http, poem, poem-openapi)",
     r"\b(hyper|hyper_util|httparse|http|http_body|http_body_util|h2|headers|poem|poem_openapi|"
     r"regex|regex_automata|mime|url|form_urlencoded|percent_encoding)::"),
    ("runtime", "async runtime and sockets (tokio, mio, futures)",
     r"\b(tokio|mio|futures_util|futures_core|futures_channel|futures|parking_lot|"
     r"parking_lot_core|event_listener|async_stream)::|\b(epoll_wait|__libc_recv|__libc_send|"
     r"recv|send|sendto|recvfrom|writev|readv|__GI___\w+)\b"),
    ("fmt", "formatting (core::fmt, to_string, itoa, ryu)", r"\b(core::fmt|alloc::fmt|itoa|ryu)::"),
    ("decimal", "money and time (rust_decimal, time, uuid)", r"\b(rust_decimal|time|uuid)::"),
    ("app", "the server's own code (superpayment_backend, superpayment_core)",
     r"\b(superpayment_backend|superpayment_core|superpayment)::"),
]
OTHER = ("other", "everything else (std, core, hashbrown, libc, the dynamic linker ...)")
_COMPILED = [(k, re.compile(p)) for k, _, p in BUCKETS]


def bucket_of(name, cache={}):
    b = cache.get(name)
    if b is None:
        best = None
        for i, (k, rx) in enumerate(_COMPILED):
            m = rx.search(name)
            if m and (best is None or m.start() < best[0]):
                best = (m.start(), i, k)
        b = best[2] if best else OTHER[0]
        cache[name] = b
    return b


def parse_callgrind(path):
    """Reads one callgrind output file (its documented format): the total Ir, every
    function's self cost, and the inclusive cost of every call edge."""
    names = {}
    self_cost = defaultdict(int)
    edges = defaultdict(int)
    npos = 1
    events = ["Ir"]
    total = None
    fn = None
    cfn = None
    pending_call = False

    def name_of(spec):
        m = re.match(r"\((\d+)\)(?:\s+(.*))?$", spec)
        if not m:
            return spec
        if m.group(2) is not None:
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), spec)

    def ir(line):
        parts = line.split()
        vals = parts[npos:]
        i = events.index("Ir")
        return int(vals[i]) if len(vals) > i else 0

    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                if pending_call:
                    edges[(fn, cfn)] += ir(line)
                    pending_call = False
                elif fn is not None:
                    self_cost[fn] += ir(line)
                continue
            if line.startswith("fn="):
                fn = name_of(line[3:])
            elif line.startswith("cfn="):
                cfn = name_of(line[4:])
            elif line.startswith("calls="):
                pending_call = True
            elif line.startswith("positions:"):
                npos = len(line.split()[1:])
            elif line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith("totals:") or line.startswith("summary:"):
                total = int(line.split()[1 + events.index("Ir") - 0])
    if total is None:
        total = sum(self_cost.values())
    return {"total": total, "self": self_cost, "edges": edges}


def buckets(parsed):
    """Two splits of the total, each adding up to it:
    by name: every function's own (self) cost goes to the bucket of its name;
    charged: the self cost of functions no bucket names (std/core generics such as
    Vec::extend, drop_in_place<T>, iterators, hash maps: `other`) is charged to the buckets
    of their callers, in proportion to what each caller spent calling them, walking up
    through callers that are themselves `other`; what has no named caller stays `other`."""
    selfb = defaultdict(int)
    for fn, c in parsed["self"].items():
        selfb[bucket_of(fn)] += c
    callers = defaultdict(list)
    for (caller, callee), c in parsed["edges"].items():
        if caller != callee and c > 0:
            callers[callee].append((caller, c))
    memo = {}

    def attribution(fn, busy):
        b = bucket_of(fn)
        if b != OTHER[0]:
            return {b: 1.0}
        if fn in memo:
            return memo[fn]
        if fn in busy or not callers.get(fn):
            return {OTHER[0]: 1.0}
        busy.add(fn)
        total = sum(c for _, c in callers[fn])
        dist = defaultdict(float)
        for caller, c in callers[fn]:
            for k, share in attribution(caller, busy).items():
                dist[k] += share * c / total
        busy.discard(fn)
        memo[fn] = dict(dist)
        return memo[fn]

    charged = defaultdict(float)
    for fn, c in parsed["self"].items():
        for k, share in attribution(fn, set()).items():
            charged[k] += c * share
    return selfb, charged


class InstructionBench(B.Bench):
    def __init__(self, args):
        super().__init__(args, "smoke")
        self.a = args
        self.valgrind_log = None

    def server_env(self, extra=None):
        env = super().server_env(extra)
        # As in production: the default log filter (info), JSON lines; no metrics listener.
        for k in ("RUST_LOG", "METRICS_BIND"):
            env.pop(k, None)
        env.update(
            # No background loops besides the Redis probe: webhook, email and fraud workers off.
            SERVE_WORKER="off",
            # The limits are checked on every payment as in production, with quotas no
            # sequential run reaches.
            PAY_RATE_LIMIT_PER_CLIENT="1000000", PAY_RATE_LIMIT_PER_KEY="1000000",
        )
        return env

    def setup(self):
        OUT.mkdir(parents=True, exist_ok=True)
        if CG.exists():
            shutil.rmtree(CG)
        CG.mkdir(parents=True)
        self.drop_stale()
        per_rep = 2 * self.a.warm + self.a.few + self.a.many
        need = per_rep * self.a.reps
        B.say(f"scratch database {self.db}: migrate, merchant, {need:,} vouchers")
        B.psql(f'CREATE DATABASE "{self.db}"')
        self.cli("migrate")
        out = self.cli("admin", "create-merchant", "--name", "Bench", "--commission-bps", "250")
        kv = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        self.merchant_id, self.pk, self.sk = kv["merchant_id"], kv["publishable_key"], kv["secret_key"]
        self.codes, _ = self.issue_vouchers(need)
        B.psql("VACUUM ANALYZE", db=self.db)

    # -- requests on one keep-alive connection ----------------------------------------

    def connect(self):
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)

    def send(self, path, body, key, headers=None):
        h = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        h.update(headers or {})
        self.conn.request("POST", path, body=json.dumps(body), headers=h)
        r = self.conn.getresponse()
        data = r.read()
        return r.status, json.loads(data or b"null")

    def pay(self, n, tag):
        ids = []
        for i in range(n):
            code = self.codes.pop()
            status, body = self.send("/api/process-payment/", {
                "order_id": f"IC{tag}{i}x{uuid.uuid4().hex[:10]}", "amount": B.AMOUNT, "currency": "EUR",
                "vouchers": [{"code": code}]}, self.pk, {"Idempotency-Key": str(uuid.uuid4())})
            if status != 201:
                raise RuntimeError(f"payment {tag}/{i} answered {status}: {body}")
            ids.append(body["id"])
        return ids

    def verify(self, ids, tag):
        for i, tid in enumerate(ids):
            status, body = self.send("/api/verify-transaction/", {"transaction_id": tid}, self.sk)
            if status != 200:
                raise RuntimeError(f"verify {tag}/{i} answered {status}: {body}")

    def control(self, pid, what):
        r = subprocess.run(["callgrind_control", what, str(pid)], capture_output=True, text=True,
                           timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"callgrind_control {what} failed: {r.stdout}{r.stderr}")

    def phase(self, pid, out_base, name, fn):
        """Zeroes the counters, runs fn, dumps; returns the dump's path."""
        before = set(CG.glob(out_base.name + "*"))
        self.control(pid, "--zero")
        fn()
        self.control(pid, "--dump=" + name)
        deadline = time.time() + 120
        while True:
            new = sorted(set(CG.glob(out_base.name + "*")) - before, key=lambda p: p.stat().st_mtime)
            # callgrind writes the file, then answers the control request: present = complete.
            if new:
                return new[-1]
            if time.time() > deadline:
                raise RuntimeError(f"no callgrind dump appeared for {name}")
            time.sleep(0.2)

    def repetition(self, rep):
        a = self.a
        out_base = CG / f"rep{rep}.out"
        prefix = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_base}",
                  "--dump-instr=no", "--collect-jumps=no", f"--log-file={CG}/rep{rep}.valgrind.log"]
        B.say(f"repetition {rep}: superpayment serve under callgrind")
        t0 = time.perf_counter()
        self.start_server(f"instructions-rep{rep}.log", prefix=prefix, ready_timeout=600)
        pid = self.server.pid
        B.note(f"ready after {time.perf_counter() - t0:.0f} s (pid {pid})")
        self.connect()
        # Warm-up: keys cached, statements prepared, the pool's connections open.
        warm_ids = self.pay(a.warm, f"w{rep}")
        self.verify(warm_ids, f"w{rep}")
        dumps = {}
        ids = {}
        for label, n in (("few", a.few), ("many", a.many)):
            t = time.perf_counter()
            dumps[f"pay_{label}"] = self.phase(
                pid, out_base, f"pay-{label}", lambda n=n, label=label: ids.__setitem__(label, self.pay(n, f"{rep}{label}")))
            B.note(f"{n} payments in {time.perf_counter() - t:.0f} s")
        # Verifies read the payments just made, each once: N1 of them, then N2 others.
        pool = ids["few"] + ids["many"]
        for label, n in (("few", a.few), ("many", a.many)):
            chunk, pool = pool[:n], pool[n:]
            t = time.perf_counter()
            dumps[f"verify_{label}"] = self.phase(
                pid, out_base, f"verify-{label}", lambda chunk=chunk, label=label: self.verify(chunk, f"{rep}{label}"))
            B.note(f"{n} verifies in {time.perf_counter() - t:.0f} s")
        self.conn.close()
        self.stop_server()
        return dumps

    def run(self):
        a = self.a
        if a.many <= a.few:
            raise SystemExit("--many must be larger than --few")
        self.setup()
        reps = []
        for rep in range(1, a.reps + 1):
            dumps = self.repetition(rep)
            parsed = {k: parse_callgrind(p) for k, p in dumps.items()}
            rec = {"dumps": {k: str(p.relative_to(B.ROOT)) for k, p in dumps.items()}}
            for kind in ("pay", "verify"):
                few, many = parsed[f"{kind}_few"], parsed[f"{kind}_many"]
                rec[kind] = {
                    "ir_few": few["total"], "ir_many": many["total"],
                    "per_request": (many["total"] - few["total"]) / (a.many - a.few),
                }
                sf, chf = buckets(few)
                sm, chm = buckets(many)
                keys = [k for k, _, _ in BUCKETS] + [OTHER[0]]
                rec[kind]["buckets"] = {
                    k: {"self": (sm.get(k, 0) - sf.get(k, 0)) / (a.many - a.few),
                        "charged": (chm.get(k, 0) - chf.get(k, 0)) / (a.many - a.few)}
                    for k in keys}
                self.annotate(dumps[f"{kind}_many"], f"{kind}-rep{rep}")
            B.note(f"repetition {rep}: {rec['pay']['per_request']:,.0f} instructions per payment, "
                   f"{rec['verify']['per_request']:,.0f} per verify")
            reps.append(rec)
        self.write(reps)

    def annotate(self, dump, label):
        """Keeps callgrind_annotate's function list (self and inclusive) beside the dumps."""
        for mode in ("self", "inclusive"):
            r = subprocess.run(["callgrind_annotate", f"--inclusive={'yes' if mode == 'inclusive' else 'no'}",
                                "--threshold=99", str(dump)], capture_output=True, text=True)
            (CG / f"{label}.annotate-{mode}.txt").write_text(r.stdout + r.stderr)

    def write(self, reps):
        a = self.a
        doc = {"method": {
            "tool": "valgrind --tool=callgrind (Ir: instructions executed in the server process, all threads)",
            "formula": "(Ir(many) - Ir(few)) / (many - few), each phase between callgrind_control --zero and --dump",
            "few": a.few, "many": a.many, "warm": a.warm, "repetitions": a.reps,
            "requests": "sequential on one keep-alive connection; payments with a fresh order id, "
                        "Idempotency-Key and voucher; verifies by transaction id, each once",
            "server": "release build, SERVE_WORKER=off, LOG_FORMAT=json at the default (info) level, "
                      "rate limits checked with quotas not reached, Redis on",
        }}
        try:
            doc["commit"] = subprocess.run(["git", "-C", str(B.ROOT), "rev-parse", "--short", "HEAD"],
                                           capture_output=True, text=True).stdout.strip() or None
        except OSError:
            doc["commit"] = None
        doc["server_bin"] = self.server_bin
        doc["build"] = "release" if "/release/" in self.server_bin else "debug" if "/debug/" in self.server_bin else None
        doc["machine"] = {"cpus": os.cpu_count(), "loadavg": os.getloadavg()[0],
                          "valgrind": subprocess.run(["valgrind", "--version"], capture_output=True,
                                                     text=True).stdout.strip()}
        for kind, key in (("pay", "instructions_per_payment"), ("verify", "instructions_per_verify")):
            vals = [r[kind]["per_request"] for r in reps]
            mean = statistics.mean(vals)
            doc[key] = round(mean)
            doc[key + "_runs"] = [round(v) for v in vals]
            doc[key + "_spread_pct"] = round((max(vals) - min(vals)) / mean * 100, 2) if mean else None
            doc[key + "_target"] = TARGETS[key]
            doc[key + "_met"] = mean <= TARGETS[key]
            prof = {}
            for k, _, _ in BUCKETS + [(OTHER[0], OTHER[1], "")]:
                prof[k] = {m: round(statistics.mean(r[kind]["buckets"][k][m] for r in reps))
                           for m in ("self", "charged")}
            doc[f"profile_{kind}"] = prof
        doc["buckets"] = {k: d for k, d, _ in BUCKETS} | {OTHER[0]: OTHER[1]}
        doc["repetitions"] = reps
        (OUT / "instructions.json").write_text(json.dumps(doc, indent=2) + "\n")
        print_table(doc)
        B.note(f"report: {OUT / 'instructions.json'}; dumps and callgrind_annotate listings in {CG}")


def print_table(doc):
    print()
    m = doc["method"]
    print(f"Server instructions per request (callgrind; ({m['many']} - {m['few']}) requests, "
          f"{m['repetitions']} repetitions; {doc.get('build')} build of commit {doc.get('commit')})")
    for kind, key, what in (("pay", "instructions_per_payment", "payment"),
                            ("verify", "instructions_per_verify", "verify")):
        runs = ", ".join(f"{v:,}" for v in doc[key + "_runs"])
        print(f"  instructions per {what:<8} {doc[key]:>12,}  target <= {doc[key + '_target']:,}  "
              f"{'ok' if doc[key + '_met'] else 'MISSED'}   (runs {runs}; spread {doc[key + '_spread_pct']} %)")
    print()
    print(f"  {'instructions per request, by bucket':<70} {'payment':>10} {'charged':>10} {'verify':>10} {'charged':>10}")
    for k, desc in doc["buckets"].items():
        p, v = doc["profile_pay"][k], doc["profile_verify"][k]
        print(f"  {desc[:70]:<70} {p['self']:>10,} {p['charged']:>10,} {v['self']:>10,} {v['charged']:>10,}")
    print("  first column: the functions of the bucket by name (self cost); 'charged': plus the std/core")
    print("  generics they call (Vec, drop_in_place, iterators, hash maps), which by name are 'other'.")
    print("  Both columns add up to the total per request (up to rounding).")
    print()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--few", type=int, default=50, help="requests of the short phase (N1)")
    ap.add_argument("--many", type=int, default=550, help="requests of the long phase (N2)")
    ap.add_argument("--warm", type=int, default=20, help="warm-up payments (and verifies) per repetition")
    ap.add_argument("--reps", type=int, default=2, help="repetitions (server runs)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = ap.parse_args()
    bench = InstructionBench(args)
    try:
        bench.run()
    finally:
        for p in B.CHILDREN:
            if p.poll() is None:
                p.kill()
        bench.cleanup()


if __name__ == "__main__":
    main()
