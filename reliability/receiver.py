#!/usr/bin/env python3
"""The merchant's webhook receiver of the reliability runs.

Verifies every delivery with the official Standard Webhooks library and appends one JSON
line per verified delivery (webhook-id, event type, transaction id) to the log before it
answers 204, so a delivery it acknowledged is never lost; a bad signature is logged as
`rejected` and answered 400. Dedup by webhook-id is the checker's job (it reads the log).

    receiver.py --port 18290 --state state.json --log webhooks.jsonl
"""
import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--state", required=True)
    p.add_argument("--log", required=True)
    args = p.parse_args()
    with open(args.state) as f:
        webhook = Webhook(json.load(f)["webhook_secret"])
    log = open(args.log, "a", buffering=1)
    lock = threading.Lock()

    def write(record):
        with lock:
            log.write(json.dumps(record) + "\n")
            log.flush()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def answer(self, status):
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self):
            self.answer(200)

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                event = webhook.verify(body, headers)
            except Exception as e:  # any verification failure is a rejected delivery
                write({"rejected": f"{headers.get('webhook-id')}: {type(e).__name__}: {e}"})
                self.answer(400)
                return
            data = event.get("data") or {}
            txn = (data.get("transaction") or {}).get("id")
            write({"webhook_id": headers["webhook-id"], "type": event.get("type"), "txn": txn})
            self.answer(204)

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
