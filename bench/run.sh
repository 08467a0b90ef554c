#!/usr/bin/env bash
# Benchmarks product-server with h2load (bench/h2load_bench.py): starts it on
# loopback (port 0 + --ready-file), seeds 1,000 products, checks each
# scenario's gRPC status with a real call, then measures req/s, latency,
# server CPU per call and peak RSS. Not a test: nothing here asserts a timing.
#
#   bench/run.sh                          # plaintext memory store, six scenarios
#   bench/run.sh --keys                   # + our server with a key set of 3 keys, interleaved
#   bench/run.sh --all                    # + the same on the SQLite store
#   bench/run.sh --tracing                # tracing off vs on (live collector) vs always_off
#   bench/run.sh --tls both --handshake   # plaintext and TLS side by side (one generated
#                                         # ECDSA P-256 certificate; --tls-key rsa2048), and
#                                         # new connections: full (n) and resumed (r) handshakes
#   bench/run.sh --peer go-seed=/path/to/go-seed/bin/product-server
#   BENCH_GO_SEED=... BENCH_CPP_CORE=... bench/run.sh
# Other arguments go to the driver (e.g. --rounds 1 --duration 3; --help).
# Instructions per call, whatever the load (callgrind; plaintext, --tls, --handshake,
# --limits, --tracing off|on|always_off): bench/callgrind_calls.py --help
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$(dirname "$here")"
tools/install-deps.sh >/dev/null
tools/build-release.sh >/dev/null

if [ "${1:-}" = "--all" ]; then
  shift
  /usr/bin/python3 bench/h2load_bench.py "$@"
  exec /usr/bin/python3 bench/h2load_bench.py --name c-sqlite --server \
    "build/bin/product-server --insecure --store sqlite:{tmpdir}/p.db --listen 127.0.0.1:0 --ready-file {ready}" "$@"
fi
exec /usr/bin/python3 bench/h2load_bench.py "$@"
