"""Turns the statements one payment sent to PostgreSQL into a pgbench script (T_sql).

The server's own SQL is captured from PostgreSQL's statement log (`log_statement = all`,
set on the bench database only, for one traced request), so the script follows the
payment path as it is in the binary under test, not as somebody remembered it.

Template rules, applied to every bind parameter of every statement:
- values that must be fresh per payment become pgbench variables set by `\\set random()`
  (order id, idempotency key, transaction and event ids);
- the traced voucher becomes a random voucher: its id becomes `:vid`, its code HMAC
  `md5(:vid::text) || md5('x' || :vid::text)`, which is what the T_sql copy of the bench
  database stores in `code_hmac` (real HMACs need the pepper and the code, which SQL has not);
- the merchant id and API key hash become `@MERCHANT_ID@` / `@KEY_HASH@`, filled in per run;
- everything else stays the traced value, as a literal. Literals that contain a colon are
  written as E'' strings with the colon escaped, because pgbench would otherwise read
  `:name` inside them as a variable.
Statements outside BEGIN/COMMIT stay outside: they are separate transactions in the server
too, and commits per payment must come out the same.

One statement is left out: the outbox NOTIFY (`SELECT pg_notify('superpayment_outbox', '')`,
backend/src/webhooks/bell.rs). A traced payment is alone, so it got one of its own; under
load the server sends at most one per 10 ms, not one per payment. The NOTIFYs the server
does send are counted in the report's commits per payment (pg_stat_database).
"""

import re

ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ \[(\d+)\] (?:(\S*)@(\S*) )?([A-Z]+):  (.*)$")
PARAM = re.compile(r"\$(\d+) = (NULL|'(?:[^']|'')*')")
PLACEHOLDER = re.compile(r"\$(\d+)")
# The outbox bell's NOTIFY: sent at most once per 10 ms per process, not per payment.
OUTBOX_NOTIFY = re.compile(r"SELECT pg_notify\('superpayment_outbox'", re.I)

# Fresh per payment. pgbench variables are numbers: ids become digits after their usual
# prefix, which keeps them unique and about as long as the real ones.
FRESH = ("oid", "idem", "txn", "evt")


def parse_log(text, database):
    """Statements of `database` in log order: (kind, sql, {n: value or None})."""
    entries = []
    for line in text.splitlines():
        m = ENTRY.match(line)
        if m:
            entries.append([m.group(3), m.group(4), m.group(5)])
        elif entries:
            # PostgreSQL indents each continuation line of a message with one tab.
            entries[-1][2] += "\n" + (line[1:] if line.startswith("\t") else line)
    out = []
    for db, level, message in entries:
        if db != database:
            continue
        if level == "LOG":
            m = re.match(r"(execute [^:]+|statement): (.*)$", message, re.S)
            if m:
                out.append([m.group(1).split()[0], m.group(2), {}])
        elif level == "DETAIL" and message.startswith("parameters: ") and out:
            for n, value in PARAM.findall(message):
                out[-1][2][int(n)] = None if value == "NULL" else value[1:-1].replace("''", "'")
    return [tuple(s) for s in out]


def payment_statements(statements):
    """The traced statements without the outbox NOTIFY (see the module's docs)."""
    return [s for s in statements if not OUTBOX_NOTIFY.match(s[1].strip())]


def sql_literal(value):
    if value is None:
        return "NULL"
    if ":" in value or "\\" in value:
        escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace(":", "\\x3a")
        return "E'" + escaped + "'"
    return "'" + value.replace("'", "''") + "'"


def substitute(sql, fn):
    """Replaces $n placeholders outside quoted literals and identifiers."""
    out, i, quote = [], 0, None
    while i < len(sql):
        c = sql[i]
        if quote:
            out.append(c)
            if c == quote:
                quote = None
            i += 1
            continue
        if c in "'\"":
            quote = c
            out.append(c)
            i += 1
            continue
        m = PLACEHOLDER.match(sql, i)
        if m:
            out.append(fn(int(m.group(1))))
            i = m.end()
            continue
        out.append(c)
        i += 1
    return "".join(out)


def build_template(statements, known):
    """pgbench script template for one traced payment.

    `known` maps roles to traced values: order_id, idempotency_key, transaction_id,
    event_id, voucher_id, voucher_hmac, merchant_id, key_hash.
    """
    fresh = {
        known["order_id"]: ("oid", ""),
        known["idempotency_key"]: ("idem", ""),
        known["transaction_id"]: ("txn", "txn_"),
        known["event_id"]: ("evt", "evt_"),
    }
    voucher_id = str(known["voucher_id"])
    clash = [v for v in (known["order_id"], known["transaction_id"]) if v == voucher_id]
    if clash:
        raise ValueError("the traced voucher id is not distinctive")
    body = []
    commits = 0
    in_tx = False
    for kind, sql, params in statements:
        text = sql.strip().rstrip(";").strip()
        word = text.split(None, 1)[0].upper() if text else ""
        if word in ("BEGIN", "START"):
            in_tx = True
        if word in ("COMMIT", "END"):
            in_tx = False
            commits += 1
        elif not in_tx and word not in ("BEGIN", "START", "ROLLBACK"):
            commits += 1

        def param(n, params=params):
            value = params.get(n)
            if value in fresh:
                var, prefix = fresh[value]
                return f"('{prefix}' || :{var})" if prefix else f"(:{var})"
            if value == voucher_id:
                return ":vid"
            if value == known["voucher_hmac"]:
                return "(md5(:vid::text) || md5('x' || :vid::text))"
            return sql_literal(value)

        text = substitute(text, param)
        body.append(text + ";")
    script = "\n".join(body)
    script = script.replace(known["merchant_id"], "@MERCHANT_ID@").replace(known["key_hash"], "@KEY_HASH@")
    header = [
        "-- One payment, statement for statement as `superpayment serve` sent it to PostgreSQL,",
        "-- captured from the statement log by scripts/bench (which regenerates it on every run",
        "-- from the binary under test; `scripts/bench --write-sql` refreshes this copy).",
        f"-- {len(statements)} statements, {commits} commit(s) per payment.",
        "-- @MERCHANT_ID@ and @KEY_HASH@ are filled in per run. Run on the T_sql copy of the bench",
        "-- database (code_hmac = md5(id) || md5('x' || id)) with -D vmin=.. -D vmax=.. -M prepared.",
        "\\set vid random(:vmin, :vmax)",
    ] + [f"\\set {v} random(1, 9000000000000000000)" for v in FRESH]
    return "\n".join(header) + "\n" + script + "\n", commits


def instantiate(template, merchant_id, key_hash):
    return template.replace("@MERCHANT_ID@", merchant_id).replace("@KEY_HASH@", key_hash)


def commits_in(template):
    m = re.search(r"(\d+) commit\(s\) per payment", template)
    return int(m.group(1)) if m else None
