#!/usr/bin/env bash
# Development certificates for product-service: a CA, a server certificate
# and a client certificate (ECDSA P-256), made with openssl. See README.md.
# Never use these in production; never commit what this writes.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: gen-dev-certs.sh [--out DIR] [--force] [--server-only] [--days N] [NAME...]

Writes into DIR (default: certs/dev next to this script, or $DEV_CERTS_DIR):
  ca.crt ca.key             development CA (keys 0600)
  server.crt server.key     server certificate; SANs: localhost, 127.0.0.1, ::1,
                            product-service, product-service.default.svc,
                            product-service.default.svc.cluster.local, and NAME...
  client.crt client.key     client certificate (extendedKeyUsage=clientAuth)

Options:
  --out DIR       output folder (created 0700 when missing)
  --force         replace files that already exist; without it a complete set
                  in DIR is left alone (exit 0) and a partial one is refused
                  (exit 1)
  --server-only   issue only a new server certificate and key with the CA that
                  is already in DIR (for rotation); needs --force when
                  server.crt exists
  --days N        validity of the server and client certificates (default 365)
  NAME            extra SAN: an IPv4/IPv6 address or a DNS name
  -h, --help      this text
EOF
}

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${DEV_CERTS_DIR:-$script_dir/dev}
force=0
server_only=0
days=365
names=()

while [ $# -gt 0 ]; do
  case $1 in
    --out) [ $# -ge 2 ] || { echo "gen-dev-certs: --out needs a folder" >&2; exit 2; }
           out=$2; shift 2 ;;
    --out=*) out=${1#--out=}; shift ;;
    --force) force=1; shift ;;
    --server-only) server_only=1; shift ;;
    --days) [ $# -ge 2 ] || { echo "gen-dev-certs: --days needs a number" >&2; exit 2; }
            days=$2; shift 2 ;;
    --days=*) days=${1#--days=}; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; names+=("$@"); break ;;
    -*) echo "gen-dev-certs: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) names+=("$1"); shift ;;
  esac
done

case $days in
  ''|*[!0-9]*) echo "gen-dev-certs: --days must be a positive integer" >&2; exit 2 ;;
esac
[ "$days" -gt 0 ] || { echo "gen-dev-certs: --days must be a positive integer" >&2; exit 2; }
[ -n "$out" ] || { echo "gen-dev-certs: empty output folder" >&2; exit 2; }
command -v openssl >/dev/null || { echo "gen-dev-certs: openssl not found" >&2; exit 1; }

# SAN list. Names end up in an openssl config: allow only characters that
# are valid in host names and addresses, so a name cannot inject syntax.
san="DNS:localhost,IP:127.0.0.1,IP:::1,DNS:product-service"
san+=",DNS:product-service.default.svc,DNS:product-service.default.svc.cluster.local"
for n in ${names[@]+"${names[@]}"}; do
  if [[ ! $n =~ ^[A-Za-z0-9*][A-Za-z0-9.:*-]*$ ]] || [ ${#n} -gt 253 ]; then
    echo "gen-dev-certs: not a host name or address: $n" >&2
    exit 2
  fi
  if [[ $n =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ || $n == *:* ]]; then
    san+=",IP:$n"
  else
    san+=",DNS:$n"
  fi
done

if [ "$server_only" = 1 ]; then
  files=(server.crt server.key)
  for f in ca.crt ca.key; do
    [ -f "$out/$f" ] || { echo "gen-dev-certs: --server-only needs $out/$f" >&2; exit 1; }
  done
else
  files=(ca.crt ca.key server.crt server.key client.crt client.key)
fi
if [ "$force" = 0 ]; then
  present=0
  for f in "${files[@]}"; do [ -e "$out/$f" ] && present=$((present + 1)); done
  if [ "$server_only" = 0 ] && [ "$present" = "${#files[@]}" ]; then
    # A complete set is already there (tools/run.sh calls us on every run).
    echo "gen-dev-certs: $out already holds a complete set; nothing done (--force replaces it)" >&2
    exit 0
  fi
  for f in "${files[@]}"; do
    if [ -e "$out/$f" ]; then
      echo "gen-dev-certs: $out/$f exists; use --force to replace it" >&2
      exit 1
    fi
  done
fi

umask 077
mkdir -p "$out"
chmod 700 "$out" 2>/dev/null || true
work=$(mktemp -d "$out/.gen.XXXXXX")
trap 'rm -rf "$work"' EXIT

serial() { echo "0x$(openssl rand -hex 16)"; }
# quiet CMD...: runs CMD, shows its stderr only when it fails.
quiet() {
  local log
  if ! log=$("$@" 2>&1 >/dev/null); then
    printf 'gen-dev-certs: %s failed:\n%s\n' "$1 $2" "$log" >&2
    return 1
  fi
}
genkey() {
  quiet openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -pkeyopt ec_param_enc:named_curve -out "$1"
  chmod 600 "$1"
}

if [ "$server_only" = 1 ]; then
  cp "$out/ca.crt" "$work/ca.crt"
  cp "$out/ca.key" "$work/ca.key"
else
  genkey "$work/ca.key"
  openssl req -x509 -new -key "$work/ca.key" -sha256 -days 3650 -set_serial "$(serial)" \
    -subj "/O=product-service development/CN=product-service dev CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -out "$work/ca.crt"
fi

# issue NAME CN EXTENSIONS: a key and a certificate signed by the CA.
issue() {
  local name=$1 cn=$2 ext=$3
  genkey "$work/$name.key"
  openssl req -new -key "$work/$name.key" -subj "/O=product-service development/CN=$cn" \
    -out "$work/$name.csr"
  printf '%s\n' "$ext" >"$work/$name.ext"
  quiet openssl x509 -req -in "$work/$name.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
    -set_serial "$(serial)" -days "$days" -sha256 -extfile "$work/$name.ext" \
    -out "$work/$name.crt"
  rm -f "$work/$name.csr" "$work/$name.ext"
}

issue server product-service "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
subjectAltName=$san"

if [ "$server_only" = 0 ]; then
  issue client product-client "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid"
fi

# Check before publishing: every certificate chains to the CA.
for f in "${files[@]}"; do
  case $f in
    server.crt|client.crt)
      openssl verify -CAfile "$work/ca.crt" "$work/$f" >/dev/null ;;
  esac
done

for f in "${files[@]}"; do
  case $f in *.crt) chmod 644 "$work/$f" ;; *.key) chmod 600 "$work/$f" ;; esac
  mv -f "$work/$f" "$out/$f" # same folder: rename, never a half-written file
done

echo "wrote to $out:"
for f in "${files[@]}"; do
  case $f in
    *.crt) echo "  $f  $(openssl x509 -in "$out/$f" -noout -serial)" ;;
    *) echo "  $f" ;;
  esac
done
echo "server SANs: $san"
