#!/usr/bin/env python3
"""The symbols src/guard/ interposes (libc's and OpenSSL's) are defined by
product-server alone: `nm -D --defined-only` of product-server lists every one
(else a hook fell out of the build), and of product-client and mint-token none
(else the guard leaked into a program whose close(), read() or
ERR_clear_error would silently become ours)."""
import argparse
import subprocess
import sys

INTERPOSED = ["listen", "accept4", "accept", "recvmsg", "read", "close",
              "SSL_read", "SSL_do_handshake", "SSL_set_accept_state",
              "ERR_clear_error"]


def defined(path):
    out = subprocess.run(["nm", "-D", "--defined-only", path], check=True,
                         capture_output=True, text=True).stdout
    return {line.split()[-1].split("@")[0] for line in out.splitlines() if line.split()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="the build's bin/ folder")
    a = ap.parse_args()
    bad = []
    server = defined(f"{a.bin}/product-server")
    missing = [s for s in INTERPOSED if s not in server]
    if missing:
        bad.append(f"product-server does not define {', '.join(missing)}")
    for prog in ("product-client", "mint-token"):
        leaked = sorted(set(INTERPOSED) & defined(f"{a.bin}/{prog}"))
        if leaked:
            bad.append(f"{prog} defines {', '.join(leaked)}")
    for b in bad:
        print("FAIL:", b)
    if not bad:
        print(f"ok: product-server defines {len(INTERPOSED)} interposed symbols, "
              "product-client and mint-token none")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
