#!/usr/bin/env python3
"""Exit 0 when every package in an npm lock file (v2/v3) is pinned by a sha512
integrity hash, else name the first one that is not and exit 1. install-deps.sh
asks this before it lets npm fetch without TLS verification."""
import json
import sys


def main(path):
    with open(path, encoding="utf-8") as f:
        packages = json.load(f).get("packages", {})
    deps = {name: meta for name, meta in packages.items() if name}
    if not deps:
        print(f"lock_pins_all: {path} lists no packages", file=sys.stderr)
        return 1
    for name, meta in deps.items():
        if meta.get("link"):
            continue
        integrity = meta.get("integrity", "")
        if not integrity.startswith("sha512-"):
            print(f"lock_pins_all: {name} has no sha512 integrity", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]) if len(sys.argv) == 2 else 2)
