#!/usr/bin/env bash
# Installs the Debian 12 packages that building, running and testing
# product-service need, and the npm packages of the grpc-js test client.
# Idempotent: installs only what is missing.
#   tools/install-deps.sh            build + run + test dependencies
#   tools/install-deps.sh --image    and the container engine of tools/image-test.sh
# Written for a minimal Debian 12 (debootstrap --variant=minbase: Essential
# packages and apt only) and --no-install-recommends: every command the
# build, tools/run.sh and the tests run comes from a package named here or
# from an Essential one (coreutils, util-linux for setpriv, libc-bin for
# ldd, dpkg for dpkg-query/dpkg -S); valgrind's libc6-dbg and psql (with
# postgresql) come as Depends. Nothing may count on a Recommends.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# The grpc-js client of the integration tests, pinned by its package-lock.json.
NODE_DIR="$ROOT/tests/integration/node"

PACKAGES=(
  # build
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libgrpc-dev protobuf-c-compiler libprotobuf-c-dev protobuf-compiler libprotobuf-dev
  libjwt-dev libjansson-dev libssl-dev libsqlite3-dev libmicrohttpd-dev libpq-dev
  libcurl4-openssl-dev
  grpc-proto libcmocka-dev
  # run (dev certificates and secrets)
  openssl
  # tests: real clients, real stores, real peers
  python3 python3-grpcio python3-protobuf python3-jwt python3-yaml
  # hostile HTTP/2 tests and bench: a raw client that frames what grpcio never sends
  python3-h2 python3-hpack
  valgrind nghttp2-client sqlite3 postgresql etcd-server
  # an independent gRPC stack (grpc-js from npm, run by Debian's Node 18)
  nodejs npm
  # a real Prometheus scrapes /metrics; promtool lints the exposition
  prometheus
  groff-base  # the man pages render without a warning (test_reference)
  # deployment checks
  dpkg-dev
)
# tools/image-test.sh builds and runs the image with Debian's podman (as root:
# kernel overlayfs and CNI bridge networking, so no uidmap, slirp4netns or
# fuse-overlayfs) on runc, and makes the base images with debootstrap where
# no registry answers. Apart from the rest: the image's own build stage runs
# this script and needs no container engine.
IMAGE_PACKAGES=(podman runc debootstrap)

case "${1:-}" in
  --image) PACKAGES+=("${IMAGE_PACKAGES[@]}") ;;
  "") ;;
  *) echo "install-deps: unknown argument $1 (usage: install-deps.sh [--image])" >&2; exit 2 ;;
esac

missing=()
for p in "${PACKAGES[@]}"; do
  # Node builds from elsewhere (e.g. NodeSource) bundle npm and conflict
  # with Debian's npm package: an npm on PATH is enough.
  if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then continue; fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: every Debian package is installed"
else
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Packages with a daemon (prometheus, postgresql, etcd-server) must not
  # start it: the tests run their own on free loopback ports, and a start
  # without an init system can hang. policy-rc.d exit 101 = "do not start";
  # an existing policy (as in container images) is left as it is.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# added by product-service tools/install-deps.sh\nexit 101\n' |
      $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    trap '$SUDO rm -f "$policy"' EXIT
  fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm ci only when node_modules is missing or was made from another lock file.
lock_sum="$(sha256sum "$NODE_DIR/package-lock.json" | cut -d' ' -f1)"
stamp="$NODE_DIR/node_modules/.product-lock-sha256"
if [ "$(cat "$stamp" 2>/dev/null)" = "$lock_sum" ]; then
  echo "install-deps: npm packages are installed"
else
  echo "install-deps: npm ci in tests/integration/node"
  npm_log="$(mktemp)"
  if ! (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error) 2>"$npm_log"; then
    cat "$npm_log" >&2
    # A network whose TLS is intercepted by a proxy this root does not trust
    # (a fresh chroot or container without the site's CA) fails here even
    # though the registry answers. The lock file pins every package by its
    # sha512 and npm ci refuses a tarball that does not match, so the bytes
    # installed are the pinned ones whoever relays them: retry once without
    # TLS verification, and only when every locked package has a sha512.
    if grep -qE 'SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_VERIFY_LEAF_SIGNATURE|DEPTH_ZERO_SELF_SIGNED_CERT' "$npm_log" &&
      python3 "$ROOT/tools/lock_pins_all.py" "$NODE_DIR/package-lock.json"; then
      echo "install-deps: the npm registry's certificate is not trusted here; retrying with" \
        "TLS verification off, every package checked against its sha512 in package-lock.json" >&2
      (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error --strict-ssl=false)
    else
      rm -f "$npm_log"
      exit 1
    fi
  fi
  rm -f "$npm_log"
  echo "$lock_sum" > "$stamp"
fi
