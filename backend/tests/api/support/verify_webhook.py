"""Verifies captured webhook deliveries with the official Standard Webhooks library.

Reads JSON from stdin: {"secret": "whsec_...", "messages": [{"headers": {...}, "body": "..."}]}
and prints one JSON line per message: {"ok": true, "id": "evt_..."} or {"ok": false, "error": "..."}.
"""
import json
import sys

from standardwebhooks import Webhook, WebhookVerificationError

request = json.load(sys.stdin)
webhook = Webhook(request["secret"])
for message in request["messages"]:
    try:
        payload = webhook.verify(message["body"], message["headers"])
        print(json.dumps({"ok": True, "id": payload["id"]}))
    except WebhookVerificationError as error:
        print(json.dumps({"ok": False, "error": str(error)}))
