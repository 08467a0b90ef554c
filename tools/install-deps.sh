#!/usr/bin/env bash
# Installs the Debian 12 packages that building, running and testing
# product-service need. Idempotent: installs only what is missing.
#   tools/install-deps.sh            build + run + test dependencies
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libgrpc-dev protobuf-c-compiler libprotobuf-c-dev protobuf-compiler libprotobuf-dev
  libjwt-dev libjansson-dev libssl-dev libsqlite3-dev libmicrohttpd-dev libpq-dev
  grpc-proto libcmocka-dev
  # run (dev certificates and secrets)
  openssl
  # tests: real clients, real stores, real peers
  python3 python3-grpcio python3-protobuf python3-jwt python3-yaml
  # hostile HTTP/2 tests and bench: a raw client that frames what grpcio never sends
  python3-h2 python3-hpack
  valgrind nghttp2-client sqlite3 postgresql etcd-server
  # deployment checks
  dpkg-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: everything is installed"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
