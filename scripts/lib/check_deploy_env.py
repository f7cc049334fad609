"""Every environment variable the deployment sets is one the binary reads.

clap ignores variables it does not know, so a misspelt name in a manifest or the Dockerfile
would silently leave a default in place (a serve pod migrating, the demo shop mounted). Names
read: `env = "NAME"` in backend/src. Names set: the ConfigMap's keys, each container's `env`,
and the Dockerfile's ENV lines of its last stage.
"""

import re
import sys
from pathlib import Path

import yaml

root = Path(sys.argv[1])
known = set()
for src in (root / "backend/src").rglob("*.rs"):
    known.update(re.findall(r'env\s*=\s*"([A-Z0-9_]+)"', src.read_text()))

used = {}
for path in sorted((root / "deploy/k8s").glob("*.yaml")):
    for doc in yaml.safe_load_all(path.read_text()):
        if not doc:
            continue
        if doc.get("kind") == "ConfigMap":
            for name in doc.get("data", {}):
                used.setdefault(name, path.name)
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []):
            for var in container.get("env", []):
                used.setdefault(var["name"], path.name)

dockerfile = (root / "deploy/Dockerfile").read_text()
last_stage = dockerfile.rsplit("\nFROM ", 1)[-1]
for block in re.findall(r"^ENV ((?:.*\\\n)*.*)$", last_stage, re.M):
    for name in re.findall(r"([A-Z][A-Z0-9_]*)=", block):
        used.setdefault(name, "Dockerfile")

unknown = {n: f for n, f in used.items() if n not in known}
if unknown:
    for name, where in sorted(unknown.items()):
        print(f"{where}: {name} is not read by superpayment (no env = \"{name}\" in backend/src)", file=sys.stderr)
    sys.exit(1)
print(f"environment: all {len(used)} variables set by deploy/ are read by superpayment")
