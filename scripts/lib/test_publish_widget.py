"""Runs scripts/publish-widget against moto's S3 server on 127.0.0.1 and reads it all back.

Usage: test_publish_widget.py ENDPOINT WWW_DIR. Checks, for every object: the bytes equal the
file, Content-Type and Cache-Control as promised (over a plain signed HTTP GET, as a CDN
would fetch them, and by HEAD); widget.js is the hashed loader's copy and short-lived; every hashed asset
is immutable; the SRI printed for the loader matches the bytes served.
"""

import base64
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import boto3

endpoint, www = sys.argv[1], Path(sys.argv[2])
bucket = "superpayment-widget-test"
s3 = boto3.client("s3", endpoint_url=endpoint)
s3.create_bucket(Bucket=bucket)

with tempfile.TemporaryDirectory() as tmp:
    record_path = Path(tmp) / "record.json"
    out = subprocess.run(
        [sys.executable, "scripts/lib/publish_widget.py", "--bucket", bucket, "--endpoint-url", endpoint,
         "--www", str(www), "--public-url", "https://cdn.example", "--json", str(record_path)],
        check=True, capture_output=True, text=True)
    record = json.loads(record_path.read_text())
print(out.stdout)

manifest = json.loads((www / "pkg/manifest.json").read_text())
expected = {f"pkg/{n}": www / "pkg" / n for n in manifest.values()}
expected["pkg/manifest.json"] = www / "pkg/manifest.json"
expected["widget.js"] = www / "pkg" / manifest["widget.js"]
listed = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
assert listed == set(expected), f"bucket holds {sorted(listed)}, expected {sorted(expected)}"

types = {".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript",
         ".css": "text/css", ".json": "application/json"}
failures = []


def url(key: str) -> str:
    """A signed GET, as a CDN with origin access fetches a private bucket."""
    return s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)


for key, path in sorted(expected.items()):
    with urllib.request.urlopen(url(key)) as resp:
        body, headers = resp.read(), resp.headers
    head = s3.head_object(Bucket=bucket, Key=key)
    cache = headers.get("Cache-Control")
    ctype = headers.get("Content-Type", "")
    if body != path.read_bytes():
        failures.append(f"{key}: served bytes differ from {path}")
    if head["CacheControl"] != cache or head["ContentType"] != ctype:
        failures.append(f"{key}: HEAD and GET disagree")
    want_type = types[Path(key).suffix]
    if not ctype.startswith(want_type):
        failures.append(f"{key}: Content-Type {ctype!r}, expected {want_type}")
    hashed = key.startswith("pkg/") and key != "pkg/manifest.json"
    if hashed and cache != "public, max-age=31536000, immutable":
        failures.append(f"{key}: hashed asset not immutable: {cache!r}")
    if not hashed and ("immutable" in (cache or "") or not re.search(r"max-age=(\d+)", cache or "")
                       or int(re.search(r"max-age=(\d+)", cache).group(1)) > 300):
        failures.append(f"{key}: must be short-lived, got {cache!r}")
    print(f"  {key:40} {len(body):7} B  {ctype:32} {cache}")

loader = f"pkg/{manifest['widget.js']}"
served = urllib.request.urlopen(url(loader)).read()
sri = "sha384-" + base64.b64encode(hashlib.sha384(served).digest()).decode()
if f'integrity="{sri}"' not in out.stdout:
    failures.append(f"the printed script tag does not carry the served loader's SRI {sri}")
if f"{loader}" not in out.stdout or any(r["integrity"] != "sha384-" + base64.b64encode(
        hashlib.sha384(expected[r["key"]].read_bytes()).digest()).decode() for r in record):
    failures.append("the printed SRI hashes do not match the files")

if failures:
    print("\n".join("FAILED: " + f for f in failures), file=sys.stderr)
    sys.exit(1)
print(f"publish-widget: {len(expected)} objects read back, bytes, types, cache headers and SRI as promised")
