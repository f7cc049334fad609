"""Prints every message of a Maildir as one JSON line, decoded by Python's email package:
envelope and header recipients, subject, the text and HTML parts, and the raw message.

    python read_maildir.py MAILDIR
"""
import json
import os
import sys
from email import message_from_bytes, policy

root = sys.argv[1]
for sub in ("new", "cur"):
    folder = os.path.join(root, sub)
    if not os.path.isdir(folder):
        continue
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as f:
            raw = f.read()
        msg = message_from_bytes(raw, policy=policy.default)
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        print(json.dumps({
            "envelope_to": msg.get("X-RcptTo", ""),
            "to": str(msg.get("To", "")),
            "from": str(msg.get("From", "")),
            "subject": str(msg.get("Subject", "")),
            "text": text.get_content() if text else "",
            "html": html.get_content() if html else "",
            "raw": raw.decode("utf-8", "replace"),
        }))
