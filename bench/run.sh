#!/usr/bin/env bash
# Benchmarks product-server with h2load through the shared harness
# (../shared/bench: it starts the server on loopback with port 0 and a ready
# file, seeds 1,000 products, checks each scenario's gRPC status with a real
# call, then measures). Not a test: nothing here asserts a timing.
#
#   bench/run.sh                 # plaintext memory store, the five scenarios
#   bench/run.sh --all           # + TLS, + SQLite store
#   bench/run.sh --vs-go         # against the Go seed anchor (built first)
#   bench/run.sh --vs-cpp        # against the grpc++ anchor
# Extra arguments go to the harness (e.g. --rounds 1 --duration 3).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
shared="${SHARED_DIR:-$root/../shared}"
harness="$shared/bench/run.sh"
[ -x "$harness" ] || [ -f "$harness" ] || { echo "bench: no harness at $harness" >&2; exit 2; }

cd "$root"
tools/install-deps.sh >/dev/null
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPRODUCT_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

ours="build/bin/product-server --insecure --store memory"
mode=plain
if [ "${1:-}" = "--all" ] || [ "${1:-}" = "--vs-go" ] || [ "${1:-}" = "--vs-cpp" ]; then
  mode=$1
  shift
fi

anchor() { # builds an anchor into a scratch copy (the shared folder is read-only)
  local name=$1 dir="${TMPDIR:-/tmp}/product-bench-anchors/$1"
  if [ ! -x "$dir/bin/product-server" ]; then
    if [ "$name" = cpp-core ]; then # its build.sh assumes grpc++ headers are there
      for p in libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
          DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >&2
      done
    fi
    mkdir -p "$(dirname "$dir")"
    rm -rf "$dir"
    cp -r "$shared/anchors/$name" "$dir"
    bash "$dir/build.sh" >&2
  fi
  echo "$dir/bin/product-server"
}

case "$mode" in
  plain) bash "$harness" "$ours" --name-a c "$@" ;;
  --all)
    bash "$harness" "$ours" --name-a c "$@"
    bash "$harness" "build/bin/product-server --store memory --tls-cert {cert} --tls-key {key}" \
      --name-a c-tls --tls "$@"
    bash "$harness" "build/bin/product-server --insecure --store sqlite:{tmpdir}/p.db" \
      --name-a c-sqlite "$@" ;;
  --vs-go) bash "$harness" "$(anchor go-seed)" "$ours" --name-a go-seed --name-b c "$@" ;;
  --vs-cpp) bash "$harness" "$(anchor cpp-core)" "$ours" --name-a cpp-core --name-b c "$@" ;;
esac
