#!/usr/bin/env python3
"""Pays orders one after another as the widget does, and records every final answer.

Each order gets one Idempotency-Key; a connection error, a 5xx or a 429 is retried with the
same key (at most --give-up seconds), as the widget retries. Every order ends as one JSON
line in --out: order id, key, final HTTP status, transaction id, when it was sent and when
its final answer came (Unix seconds). `check` compares those lines with a database.

  pay_client.py pay --api URL --pk PK --codes FILE --prefix P --out FILE
                    [--count N | --until-file F --min-after-file N]
  pay_client.py check --out FILE... --psql 'psql args' [--committed-before T]
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid


def pay_once(api, pk, key, body, timeout=10):
    req = urllib.request.Request(
        f"{api}/api/process-payment/",
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {pk}",
            "Idempotency-Key": key,
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"{}")
        except ValueError:
            return e.code, {}
    except (urllib.error.URLError, OSError, TimeoutError):
        return None, {}


def retryable(status, answer):
    # 409 idempotency_key_in_use: an earlier attempt with this key is still in flight (or
    # held by an instance that died); the widget tries again later with the same key.
    in_use = status == 409 and answer.get("error", {}).get("code") == "idempotency_key_in_use"
    return status is None or status >= 500 or status == 429 or in_use


def pay(args):
    codes = [c for c in open(args.codes).read().split() if c]
    done = after_file = 0
    with open(args.out, "a") as out:
        while True:
            if args.count is not None and done >= args.count:
                break
            if args.until_file and os.path.exists(args.until_file) and after_file >= args.min_after_file:
                break
            order = f"{args.prefix}-{done:05d}"
            key = str(uuid.uuid4())
            body = {
                "order_id": order,
                "amount": "1.00",
                "currency": "EUR",
                "vouchers": [{"code": codes[done % len(codes)]}],
            }
            sent = time.time()
            attempts = 0
            while True:
                attempts += 1
                status, answer = pay_once(args.api, args.pk, key, body)
                if not retryable(status, answer) or time.time() - sent > args.give_up:
                    break
                time.sleep(0.1)
            answered = time.time()
            ok = status in (200, 201) and answer.get("status") == "succeeded"
            out.write(json.dumps({
                "order_id": order, "key": key, "http": status, "ok": ok,
                "transaction_id": answer.get("id") if ok else None,
                "error": None if ok else answer.get("error", {}).get("code"),
                "sent": sent, "answered": answered, "attempts": attempts,
            }) + "\n")
            out.flush()
            done += 1
            if args.until_file and os.path.exists(args.until_file) and ok:
                after_file += 1


def check(args):
    records = [json.loads(line) for path in args.out for line in open(path) if line.strip()]
    psql = shlex.split(args.psql)
    rows = subprocess.run(
        psql + ["-AtF", ",", "-c", "SELECT order_id, id FROM transactions"],
        check=True, capture_output=True, text=True,
    ).stdout.split()
    in_db = dict(r.split(",", 1) for r in rows)
    problems = []
    expected = {}
    for r in records:
        if args.committed_before is not None and r["sent"] < args.committed_before < r["answered"]:
            # Answered before the moment means committed before it, sent after it means
            # committed after it; a payment in flight across the moment proves nothing.
            problems.append(f"{r['order_id']} was in flight at the restore moment")
        elif r["ok"] and (args.committed_before is None or r["answered"] < args.committed_before):
            expected[r["order_id"]] = r["transaction_id"]
    for order, txn in sorted(expected.items()):
        if in_db.get(order) != txn:
            problems.append(f"{order} was answered succeeded ({txn}) but is not in the database")
    for order in sorted(set(in_db) - set(expected)):
        problems.append(f"{order} is in the database but was not answered succeeded"
                        + (" before the moment" if args.committed_before is not None else ""))
    succeeded = sum(r["ok"] for r in records)
    failed = [r for r in records if not r["ok"]]
    print(f"{len(records)} payments answered: {succeeded} succeeded, {len(failed)} failed "
          f"({sorted({str(r['http']) + ':' + str(r['error']) for r in failed})}); "
          f"{len(in_db)} transactions in the database, {len(expected)} expected there")
    for p in problems:
        print("VIOLATION:", p, file=sys.stderr)
    return 1 if problems else 0


def pause(args):
    """The failover pause: from the stop of the primary to the first success answered after it."""
    t_stop = float(open(args.stopped_at).read())
    records = [json.loads(line) for line in open(args.out) if line.strip()]
    # An answer that arrives just after the stop without a retry was committed before it;
    # the pause ends with the first success of a payment sent after it or retried across it.
    after = [r["answered"] for r in records
             if r["ok"] and r["answered"] > t_stop and (r["sent"] > t_stop or r["attempts"] > 1)]
    if not after:
        print("no payment succeeded after the primary stopped", file=sys.stderr)
        return 1
    retried = sum(1 for r in records if r["attempts"] > 1)
    print(f"failover pause: {min(after) - t_stop:.2f} s from stopping the primary to the first "
          f"payment answered on the promoted node; {retried} payments needed retries")
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pay")
    a.add_argument("--api", required=True)
    a.add_argument("--pk", required=True)
    a.add_argument("--codes", required=True)
    a.add_argument("--prefix", required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--count", type=int)
    a.add_argument("--until-file")
    a.add_argument("--min-after-file", type=int, default=20)
    a.add_argument("--give-up", type=float, default=90)
    c = sub.add_parser("check")
    c.add_argument("--out", action="append", required=True)
    c.add_argument("--psql", required=True)
    c.add_argument("--committed-before", type=float)
    s = sub.add_parser("pause")
    s.add_argument("--out", required=True)
    s.add_argument("--stopped-at", required=True)
    args = p.parse_args()
    sys.exit({"pay": pay, "check": check, "pause": pause}[args.cmd](args) or 0)


if __name__ == "__main__":
    main()
