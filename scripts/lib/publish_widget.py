"""Uploads the built checkout widget (www/pkg/ and the loader) to an S3-compatible bucket.

Layout in the bucket mirrors the URL paths the server answers, so a CDN can route /widget.js
and /pkg/* to the bucket and everything else (checkout.html, /api) to the load balancer:

  pkg/<name>-<hash>.<ext>  content-hashed: Cache-Control public, max-age=31536000, immutable
  pkg/manifest.json        logical -> hashed names: short-lived, revalidated
  widget.js                the loader merchants embed (a copy of pkg/widget-<hash>.js):
                           short-lived, so a new release reaches every shop within minutes

The hashed assets are uploaded before the short-lived names that point at them, so a
shopper never gets a loader whose files are not there yet. Prints an SRI line per asset and
the pinned script tag for merchants who want integrity checking.
"""

import argparse
import base64
import hashlib
import json
import mimetypes
import os
import sys
from pathlib import Path

import boto3
from botocore.config import Config

IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=300, must-revalidate"
MANIFEST = "public, max-age=60, must-revalidate"
TYPES = {
    ".wasm": "application/wasm",
    ".mjs": "text/javascript; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
}


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def content_type(name: str) -> str:
    ext = os.path.splitext(name)[1]
    return TYPES.get(ext) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def plan(www: Path) -> list[tuple[str, Path, str]]:
    """(key, file, Cache-Control) in upload order: hashed assets first."""
    pkg = www / "pkg"
    manifest_path = pkg / "manifest.json"
    if not manifest_path.is_file():
        sys.exit(f"publish-widget: {manifest_path} is missing: run scripts/build-widget first")
    manifest = json.loads(manifest_path.read_text())
    for logical, hashed in manifest.items():
        if not (pkg / hashed).is_file():
            sys.exit(f"publish-widget: manifest names {hashed} for {logical}, not in {pkg}")
    uploads = [(f"pkg/{name}", pkg / name, IMMUTABLE) for name in sorted(manifest.values())]
    uploads.append(("pkg/manifest.json", manifest_path, MANIFEST))
    uploads.append(("widget.js", pkg / manifest["widget.js"], SHORT))
    return uploads


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bucket", default=os.environ.get("WIDGET_BUCKET"), help="bucket name (WIDGET_BUCKET)")
    ap.add_argument("--endpoint-url", default=os.environ.get("S3_ENDPOINT_URL"),
                    help="S3-compatible endpoint (S3_ENDPOINT_URL); unset: AWS S3")
    ap.add_argument("--prefix", default=os.environ.get("WIDGET_PREFIX", ""), help="key prefix, e.g. v1/")
    ap.add_argument("--www", default="www", help="folder holding the built pkg/ (default www)")
    ap.add_argument("--public-url", default=os.environ.get("WIDGET_PUBLIC_URL", "https://pay.example"),
                    help="where the CDN serves the bucket, for the printed script tag")
    ap.add_argument("--json", metavar="FILE", help="also write what was uploaded (key, sri, headers) to FILE")
    args = ap.parse_args()
    if not args.bucket:
        ap.error("--bucket or WIDGET_BUCKET is required")

    s3 = boto3.client("s3", endpoint_url=args.endpoint_url,
                      config=Config(retries={"max_attempts": 5, "mode": "standard"}))
    record = []
    for key, path, cache in plan(Path(args.www)):
        data = path.read_bytes()
        full_key = args.prefix + key
        ctype = content_type(key)
        s3.put_object(Bucket=args.bucket, Key=full_key, Body=data, ContentType=ctype,
                      CacheControl=cache, ChecksumAlgorithm="SHA256")
        record.append({"key": full_key, "bytes": len(data), "content_type": ctype,
                       "cache_control": cache, "integrity": sri(data)})
        print(f"uploaded {full_key:40} {len(data):7} B  {cache}", file=sys.stderr)

    base = args.public_url.rstrip("/") + "/" + args.prefix
    print("\nSubresource Integrity of the published assets:")
    for r in record:
        print(f"  {r['key']:40} {r['integrity']}")
    loader = next(r for r in record if r["key"].startswith(args.prefix + "pkg/widget-") and r["key"].endswith(".js"))
    print("\nFor merchants who pin the loader (it then changes only when they update the tag):")
    print(f'  <script src="{base}{loader["key"][len(args.prefix):]}" integrity="{loader["integrity"]}"'
          ' crossorigin="anonymous" data-api-key="pk_live_..." ...></script>')
    print(f"The unpinned loader, updated within 5 minutes of a release: {base}widget.js")
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
