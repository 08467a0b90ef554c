#!/usr/bin/env bash
# Installs what is missing, builds, and runs product-server with TLS on and a
# durable SQLite store. A development certificate (certs/dev/) and a JWT
# secret (secrets/jwt-secret, mode 0600) are generated when none are given.
# Every flag given here is passed to the server (see product-server --help).
#
#   tools/run.sh                         # TLS on :50051, sqlite:./data/products.db
#   JWT_SECRET_FILE=/path tools/run.sh   # your secret
#   TLS_CERT_FILE=... TLS_KEY_FILE=... tools/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install-deps.sh
tools/build-release.sh >/dev/null

if [ -z "${TLS_CERT_FILE:-}" ] && [ -z "${INSECURE:-}" ]; then
  certs/gen-dev-certs.sh >/dev/null
  export TLS_CERT_FILE="$PWD/certs/dev/server.crt" TLS_KEY_FILE="$PWD/certs/dev/server.key"
fi
if [ -z "${JWT_SECRET_FILE:-}" ] && [ -z "${JWT_SECRET:-}" ]; then
  if [ ! -s secrets/jwt-secret ]; then
    mkdir -p secrets
    (umask 077 && openssl rand -base64 48 | tr -d '\n' > secrets/jwt-secret)
    echo "run: generated a development JWT secret in secrets/jwt-secret" >&2
  fi
  export JWT_SECRET_FILE="$PWD/secrets/jwt-secret"
fi
exec build/bin/product-server "$@"
