#!/usr/bin/env bash
# Runs bench/store_pg_bench.c (memory, SQLite and PostgreSQL stores under 16
# concurrent clients) with a throw-away PostgreSQL (tests/integration/
# pgtemp.py, fsync on, like a real server). Not a test.
#
#   bench/store_pg_bench.sh [BUILD_DIR] [-- bench options: --clients N --seconds S]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
build="${1:-$root/build}"
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift

[ -f "$build/CMakeCache.txt" ] || cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target product_store >/dev/null
# The store layer and the one below it (core), as the build lays them out.
cc -O2 -std=c11 -D_GNU_SOURCE -I"$build/layers/store" -I"$build/layers/core" $(pkg-config --cflags libpq) \
   "$here/store_pg_bench.c" "$build/libproduct_store.a" "$build/libproduct_core.a" $(pkg-config --libs grpc libprotobuf-c openssl libjwt jansson \
   sqlite3 libpq libmicrohttpd) -lpthread -lm -o "$build/store_pg_bench"

out="$(mktemp)"
/usr/bin/python3 "$root/tests/integration/pgtemp.py" start --fsync >"$out" &
pg_pid=$!
trap 'kill -TERM $pg_pid 2>/dev/null; wait $pg_pid 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 1 300); do
  [ -s "$out" ] && break
  kill -0 $pg_pid 2>/dev/null || { echo "store_pg_bench: PostgreSQL did not start" >&2; exit 1; }
  sleep 0.1
done
dsn="$(head -n1 "$out")"
[ -n "$dsn" ] || { echo "store_pg_bench: PostgreSQL did not start" >&2; exit 1; }
# The store logs JSON lines on stderr; the figures are on stdout.
"$build/store_pg_bench" --pg "$dsn" "$@" 2>/dev/null
