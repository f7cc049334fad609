"""A real SMTP server for the email tests: aiosmtpd storing every message it accepts in a
Maildir (MAILDIR must not exist yet: Python's mailbox module creates it with its
tmp/, new/ and cur/ folders). Prints "ready" once it accepts connections and stops when its stdin closes (the
test process ended), so no server outlives its test run.

    python smtp_server.py HOST PORT MAILDIR
"""
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox

host, port, maildir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
controller = Controller(Mailbox(maildir), hostname=host, port=port)
controller.start()
print("ready", flush=True)
sys.stdin.read()
controller.stop()
