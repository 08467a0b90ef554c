#!/usr/bin/env bash
# Builds the container image of the committed tree (HEAD) with Debian's podman
# on runc, and checks it from the outside, as a user meets it:
#
#   - the image runs as 10001:10001, holds no compiler, every binary's libraries
#     resolve (ldd), every binary answers --help, the HEALTHCHECK is there;
#   - docs/deployment.md's local-run lines, run as written (only the names
#     below are changed): dev certificates made for the test, the secret and
#     key chowned to 10001, the SQLite store on a volume, a read-only root with
#     a tmpfs; health SERVING on the API (TLS) and on the probe port, the
#     image's HEALTHCHECK healthy; a token from the image's mint-token, an
#     authenticated CreateProduct and a ListProducts with its product-client;
#     the page's "try it" lines; `docker stop` ends it with exit status 0
#     (before the stop timeout's SIGKILL); started again on the same volume
#     the product is still there;
#   - docs/postgres.md's lines against a throw-away PostgreSQL with TLS
#     (sslmode=verify-full, sslrootcert): the store serves; without
#     sslrootcert it cannot, and the log says why;
#   - a start without a secret is refused: exit status 2, one line;
#   - the image size, against a budget (PRODUCT_IMAGE_BUDGET_MB, default 160;
#     docs/deployment.md says why).
#
#   tools/image-test.sh [--checks unit|none|full] [--worktree] [--ci]
#
# --checks   the Dockerfile's CHECKS build argument (default: its own default,
#            unit); .ci/run passes none, since tools/test.sh ran every test of
#            the same tree just before.
# --worktree build the working tree (uncommitted changes included) instead of HEAD.
# --ci       where no container can run here (a chroot without cgroups, a
#            kernel or sandbox that refuses namespaces), print one line saying
#            so and exit 0; without it that case exits 77 (a visible skip).
#
# Runs as root (rootful podman: kernel overlayfs, CNI networking). Installs
# what is missing (tools/install-deps.sh --image) and makes the base images
# with debootstrap when no registry answers (tools/image-base.sh).
# Exit status: 0 every check passed, 1 a check or the build failed,
# 77 no container engine can run here (without --ci).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

checks=""
worktree=0
ci=0
while [ $# -gt 0 ]; do
  case $1 in
    --checks) [ $# -ge 2 ] || { echo "image-test: --checks needs a value" >&2; exit 2; }
              checks=$2; shift 2 ;;
    --worktree) worktree=1; shift ;;
    --ci) ci=1; shift ;;
    -h|--help) sed -n '2,37p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "image-test: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case $checks in ""|unit|none|full) ;; *) echo "image-test: --checks must be unit, none or full" >&2; exit 2 ;; esac

BUDGET_MB=${PRODUCT_IMAGE_BUDGET_MB:-160}
IMAGE=localhost/product-service:image-test
# Hang guards, not budgets: far beyond what each step takes on a loaded machine.
START_GUARD=180
CALL_GUARD=60
BUILD_GUARD=3600

# One line, and no failure, where no container can run (CI in a chroot).
cannot_run() {
  echo "image-test: SKIPPED: no container engine can run here ($1); the image was not built or tested"
  [ "$ci" -eq 1 ] && exit 0
  exit 77
}

# Prerequisites first: a chroot without /sys or cgroups cannot run a
# container, and installing podman there would only prove that slowly.
[ "$(id -u)" -eq 0 ] || cannot_run "needs root for rootful podman"
# (/proc/mounts shows the host's mounts in a chroot: /sys/fs/cgroup itself is
# what a runtime uses.)
grep -qE '^cgroup2? ' /proc/mounts 2>/dev/null && [ -n "$(ls -A /sys/fs/cgroup 2>/dev/null)" ] ||
  cannot_run "no cgroup file system at /sys/fs/cgroup"
[ -e /proc/self/ns/mnt ] && [ -e /proc/self/ns/net ] || cannot_run "no namespaces in /proc"

tools/install-deps.sh --image >/dev/null

# crun 1.8 (Debian 12) refuses hybrid cgroups ("cgroups in hybrid mode not
# supported"): runc. Podman's default ulimits exceed the hard limits of a
# root without CAP_SYS_RESOURCE (a container or a sandbox), and the limits
# podman's own children get can be lower than this shell's (nproc 32768
# where the shell has 96367): at most 16384, far more than the test needs.
hard_limit() {
  local v
  v=$(ulimit -H "$1")
  if [ "$v" = unlimited ] || [ "$v" -gt 16384 ]; then v=16384; fi
  echo "$v"
}
NOFILE=$(hard_limit -n)
NPROC=$(hard_limit -u)
LIMITS=(--ulimit "nofile=$NOFILE:$NOFILE" --ulimit "nproc=$NPROC:$NPROC")
podman_() { podman --runtime runc "$@"; }
# The same for one-off commands, under a hang guard.
podman_t() { timeout "$CALL_GUARD" podman --runtime runc "$@"; }
# `docker` as the docs spell it, with the two settings above; every command
# but the server's own `docker run --name ...` under the hang guard.
docker() {
  if [ "${1:-}" = run ]; then
    shift
    case " $* " in
      *" --name "*) podman_ run "${LIMITS[@]}" "$@" ;;
      *) podman_t run "${LIMITS[@]}" "$@" ;;
    esac
  else
    podman_t "$@"
  fi
}
# As root, the page's sudo is the command itself (sudo may not be installed).
sudo() { "$@"; }

tools/image-base.sh
probe=$(podman_t run --rm "${LIMITS[@]}" --network none debian:bookworm-slim true 2>&1) ||
  cannot_run "podman run of a trivial image fails: $(printf '%s' "$probe" | tail -n 1)"

work=$(mktemp -d /tmp/image-test.XXXXXX)
name=product-image-test-$$
volume=product-image-test-$$
server_pid=""
cleanup() {
  podman_ rm -f "$name" >/dev/null 2>&1 || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  [ -n "${pg_pid:-}" ] && kill "$pg_pid" 2>/dev/null && wait "$pg_pid" 2>/dev/null || true
  podman volume rm -f "$volume" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# ------------------------------------------------------------------ build ---
ctx="$work/context"
mkdir -p "$ctx"
if [ "$worktree" -eq 1 ]; then
  what="the working tree"
  tar -C "$ROOT" --exclude-vcs --exclude='./build' --exclude='./build-*' -cf - . | tar -C "$ctx" -xf -
else
  rev=$(git rev-parse --short HEAD)
  what="HEAD ($rev)"
  git archive HEAD | tar -C "$ctx" -xf -
  [ -z "$(git status --porcelain --untracked-files=no)" ] ||
    echo "image-test: building HEAD ($rev); uncommitted changes are not in it (--worktree builds them)"
fi
old_id=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
build_args=(--format docker "${LIMITS[@]}" -t "$IMAGE")
[ -n "$checks" ] && build_args+=(--build-arg "CHECKS=$checks")
t0=$(date +%s)
if ! timeout "$BUILD_GUARD" podman --runtime runc build "${build_args[@]}" "$ctx" >"$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log"
  echo "image-test: FAILED: podman build of $what"
  exit 1
fi
build_s=$(( $(date +%s) - t0 ))
new_id=$(podman image inspect --format '{{.Id}}' "$IMAGE")
# The previous test image, now untagged (its layers shared with this one stay).
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then podman rmi "$old_id" >/dev/null 2>&1 || true; fi
echo "image-test: built $IMAGE from $what in ${build_s} s (CHECKS=${checks:-unit, the default})"

# ----------------------------------------------------------------- checks ---
passed=0
failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
# One-off containers of the image: no HEALTHCHECK (podman would try to set
# a systemd timer for it, and complain where there is no systemd).
in_image() { podman_t run --rm "${LIMITS[@]}" --no-healthcheck --network none "$@"; }

user=$(podman image inspect --format '{{.Config.User}}' "$IMAGE")
ids=$(in_image --entrypoint sh "$IMAGE" -c 'echo "$(id -u):$(id -g)"')
if [ "$user" = 10001:10001 ] && [ "$ids" = 10001:10001 ]; then
  ok "runs as 10001:10001, not root"
else
  fail "user" "image USER '$user', id in the container '$ids'"
fi

tools_found=$(in_image --entrypoint sh "$IMAGE" -c \
  'for t in cc gcc clang ld as make cmake git npm; do command -v $t; done; ls /src 2>/dev/null' || true)
[ -z "$tools_found" ] && ok "no build tools or sources in the image" ||
  fail "build tools" "found: $(echo $tools_found)"

ldd_out=$(in_image --entrypoint sh "$IMAGE" -c \
  'for b in /usr/local/bin/*; do echo "== $b"; ldd "$b" || echo "LDD FAILED"; done' 2>&1)
if ! grep -qE 'not found|LDD FAILED' <<<"$ldd_out" && [ "$(grep -c '^== ' <<<"$ldd_out")" -eq 3 ]; then
  ok "ldd of the 3 binaries: $(grep -c '=> /' <<<"$ldd_out") libraries, none missing"
else
  fail "ldd" "$(grep -E '^== |not found|LDD FAILED' <<<"$ldd_out" | tr '\n' ' ')"
fi

for b in product-server product-client mint-token; do
  if out=$(in_image --entrypoint "/usr/local/bin/$b" "$IMAGE" --help 2>&1) && grep -q '^Usage' <<<"$out"; then
    ok "$b --help"
  else
    fail "$b --help" "$(head -n 2 <<<"$out")"
  fi
done

hc=$(podman image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE")
grep -q 'product-client' <<<"$hc" && grep -q 'health' <<<"$hc" && ok "HEALTHCHECK runs product-client health" ||
  fail "HEALTHCHECK" "$hc"

# The page's lines between "<!-- image-test: BLOCK -->" and "<!-- image-test:
# end -->", continuation lines joined, with only these names changed: the
# scratch folder, the host ports, the container, volume and image names.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
api_port=$(free_port)
health_port=$(free_port)
docs_block() {
  awk -v block="$2" '
    $0 == "<!-- image-test: " block " -->" { on = 1; next }
    on && $0 == "<!-- image-test: end -->" { exit }
    on && /^    / { line = line substr($0, 5); if (line ~ /\\$/) { sub(/\\$/, "", line); next } print line; line = "" }
  ' "$ctx/docs/$1" |
    sed -e "s#/tmp/pc#$work/pc#g" -e "s#/tmp/pg#$work/pg#g" \
        -e "s#db.example.internal:5432#$gateway:${pg_port:-5432}#g" -e "s#PASSWORD#$pg_password#g" \
        -e "s#registry.example.com/product-service:0.1.0#$IMAGE#g" \
        -e "s#product-data#$volume#g" \
        -e "s#\\([ ]\\)product-service\\( \\|\$\\)#\\1$name\\2#g" \
        -e "s#-p 50051:50051#-p $api_port:50051#g" -e "s#-p 8081:8081#-p $health_port:8081#g" \
        -e "s#localhost:50051#localhost:$api_port#g" -e "s#localhost:8081#localhost:$health_port#g"
}
# The containers reach the host (a PostgreSQL below) at their network's gateway.
gateway=$(podman network inspect podman --format '{{range .Subnets}}{{.Gateway}}{{end}}' 2>/dev/null || true)
gateway=${gateway:-10.88.0.1}
subnet=$(podman network inspect podman --format '{{range .Subnets}}{{.Subnet}}{{end}}' 2>/dev/null || true)
subnet=${subnet:-10.88.0.0/16}
pg_password=$(openssl rand -hex 12)
docs_block deployment.md local-run >"$work/local-run.sh"
docs_block deployment.md local-try >"$work/local-try.sh"
if ! grep -q '^docker run ' "$work/local-run.sh" || ! grep -q 'docker stop' "$work/local-try.sh"; then
  fail "docs/deployment.md" "no local-run/local-try blocks between image-test markers"
  echo "image-test: $passed passed, $failed failed"
  exit 1
fi

# The image's product-client, from outside the server's container (host
# network, through the published ports), as user 10001.
client() {
  podman_t run --rm "${LIMITS[@]}" --no-healthcheck --network host -v "$work/pc:/run/secrets/pc:ro" -e PRODUCT_TOKEN \
    --entrypoint product-client "$IMAGE" --timeout 10 "$@"
}
wait_serving() {
  local deadline=$(( $(date +%s) + START_GUARD ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if ! kill -0 "$server_pid" 2>/dev/null; then return 1; fi
    client --insecure --addr "127.0.0.1:$health_port" health product.ProductService >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  return 1
}
# The server as a whole serving, whatever its store does.
wait_live() {
  local deadline=$(( $(date +%s) + START_GUARD ))
  while [ "$(date +%s)" -lt "$deadline" ] && kill -0 "$server_pid" 2>/dev/null; do
    client --insecure --addr "127.0.0.1:$health_port" health >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  return 1
}
# Runs the lines of a page's block up to its `docker run` in this shell
# (with "setup"), then that command in the background (it stays in the
# foreground on the page).
start_from_docs() {
  local setup=$1 lines=${2:-$work/local-run.sh}
  # shellcheck source=/dev/null
  (cd "$ctx" && set -e && if [ "$setup" = 1 ]; then source <(grep -v '^docker run ' "$lines"); fi
   source <(grep '^docker run ' "$lines")) >"$work/server.log" 2>&1 &
  server_pid=$!
}
# The page's `docker stop`; sets stop_rc (the `docker run` exit status) and stop_s.
stop_from_docs() {
  local t
  t=$(date +%s)
  stop_rc=0
  # shellcheck source=/dev/null
  if ! (cd "$ctx" && source <(grep '^docker stop ' "$work/local-try.sh")) >/dev/null 2>&1; then
    stop_rc="(docker stop failed)"
  fi
  local rc=0
  wait "$server_pid" || rc=$?
  if [ "$stop_rc" = 0 ]; then stop_rc=$rc; fi
  server_pid=""
  stop_s=$(( $(date +%s) - t ))
}

start_from_docs 1
if wait_serving; then
  ok "docs' local-run lines: the server serves (TLS, SQLite on a volume, read-only root)"
else
  fail "docs' local-run lines" "not serving (it exited, or not within ${START_GUARD} s): $(tail -n 5 "$work/server.log")"
  echo "image-test: $passed passed, $failed failed"
  exit 1
fi

ro=$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}} {{.Config.User}}' "$name")
wr=$(podman_t exec "$name" sh -c 'touch /usr/local/bin/x 2>&1; touch /data/x /tmp/x && rm /data/x /tmp/x && echo writable' || true)
if [ "$ro" = "true 10001:10001" ] && grep -q 'Read-only file system' <<<"$wr" && grep -q writable <<<"$wr"; then
  ok "read-only root; /data (the volume) and /tmp (tmpfs) writable by 10001"
else
  fail "read-only root" "inspect '$ro', writes: $wr"
fi

out=$(client --addr "127.0.0.1:$api_port" --ca /run/secrets/pc/ca.crt health 2>&1) &&
  [ "$out" = '{"service":"","status":"SERVING"}' ] && ok "health on the API port (TLS): $out" ||
  fail "health on the API port" "$out"
out=$(client --insecure --addr "127.0.0.1:$health_port" health product.ProductService 2>&1) &&
  [ "$out" = '{"service":"product.ProductService","status":"SERVING"}' ] &&
  ok "health on the probe port: $out" || fail "health on the probe port" "$out"
# Run once by hand: without systemd, podman has no timer to run it.
if out=$(podman_t healthcheck run "$name" 2>&1) &&
  hs=$(podman inspect --format '{{.State.Health.Status}}' "$name") && [ "$hs" = healthy ]; then
  ok "the image's HEALTHCHECK: $hs"
else
  fail "HEALTHCHECK" "$out ${hs:-}"
fi

if PRODUCT_TOKEN=$(podman_t exec "$name" mint-token --sub image-test --secret-file /run/secrets/pc/jwt-secret) &&
  [ -n "$PRODUCT_TOKEN" ]; then
  export PRODUCT_TOKEN
  ok "the image's mint-token, reading the mounted secret as 10001"
else
  fail "mint-token" "no token"
fi
created=$(client --addr "127.0.0.1:$api_port" --ca /run/secrets/pc/ca.crt create --name "image test" \
  --price 12.5 --category image 2>&1) || true
id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$created" 2>/dev/null || true)
[ -n "$id" ] && ok "CreateProduct with a token: $id" || fail "CreateProduct" "$created"
refused=$(PRODUCT_TOKEN="" client --addr "127.0.0.1:$api_port" --ca /run/secrets/pc/ca.crt create --name x 2>&1) &&
  fail "CreateProduct without a token" "accepted: $refused" ||
  { grep -q '^error: UNAUTHENTICATED' <<<"$refused" && ok "CreateProduct without a token: UNAUTHENTICATED" ||
    fail "CreateProduct without a token" "$refused"; }
listed=$(client --addr "127.0.0.1:$api_port" --ca /run/secrets/pc/ca.crt list --filter 'categories:"image"' 2>&1) || true
if [ -n "$id" ] && grep -q "\"id\":\"$id\"" <<<"$listed" && grep -q '"total_size":1' <<<"$listed"; then
  ok "ListProducts lists it (total_size 1)"
else
  fail "ListProducts" "$listed"
fi

# The page's "try it" lines, each to exit 0, but the stop (checked below).
# A variable they set (C=...) is set in this shell, for the lines after it.
try_failed=""
while IFS= read -r line; do
  case $line in "docker stop "*) continue ;; esac
  if [[ $line =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; then eval "$line"; continue; fi
  (cd "$ctx" && eval "$line") >"$work/try.out" 2>&1 || try_failed="$try_failed [$line: $(tail -n 1 "$work/try.out")]"
done <"$work/local-try.sh"
[ -z "$try_failed" ] && ok "docs' try-it lines ($(grep -vc '^docker stop' "$work/local-try.sh"))" ||
  fail "docs' try-it lines" "$try_failed"

stop_from_docs
if [ "$stop_rc" = 0 ]; then
  ok "docs' docker stop: exit status 0 after ${stop_s} s (SIGTERM, drained, before the stop timeout)"
else
  fail "stop" "exit status $stop_rc after $stop_s s: $(tail -n 3 "$work/server.log")"
fi

# Again, on the same volume: the product outlived the container.
start_from_docs 0
if wait_serving; then
  listed=$(client --addr "127.0.0.1:$api_port" --ca /run/secrets/pc/ca.crt list 2>&1) || true
  [ -n "$id" ] && grep -q "\"id\":\"$id\"" <<<"$listed" &&
    ok "started again on the same volume: the product is still there" ||
    fail "restart on the volume" "$listed"
  stop_from_docs
  [ "$stop_rc" = 0 ] || fail "second stop" "exit status $stop_rc"
else
  fail "restart on the volume" "not serving: $(tail -n 5 "$work/server.log")"
fi

# docs/postgres.md's lines: a PostgreSQL with TLS (its own dev CA, a
# certificate for the gateway address), sslmode=verify-full with sslrootcert.
# Without sslrootcert the image's user has no ~/.postgresql/root.crt: the
# store never connects, and the server says why.
pg_pid=""
start_postgres() {
  mkdir -p "$work/pg"
  chmod 0755 "$work/pg"
  "$ctx/certs/gen-dev-certs.sh" --out "$work/pgcerts" "$gateway" >/dev/null
  install -m 0644 "$work/pgcerts/ca.crt" "$work/pg/ca.crt"
  PYTHONPATH="$ctx/tests/integration" python3 - "$work/pgcerts" "$gateway" "$pg_password" "$subnet" \
    >"$work/pg.out" 2>"$work/pg.err" <<'PY' &
import os, shutil, signal, sys, time
import pgtemp
certs, gateway, password, subnet = sys.argv[1:5]
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
pg = pgtemp.PgTemp()
try:
    for f in ("server.crt", "server.key"):
        dst = os.path.join(pg.dir, f)
        shutil.copy(os.path.join(certs, f), dst)
        os.chmod(dst, 0o600)
        if pg._user:
            os.chown(dst, pg._user.pw_uid, pg._user.pw_gid)
    # The containers come from the podman network: TLS and the password only.
    with open(os.path.join(pg.data, "pg_hba.conf"), "a") as f:
        f.write("hostssl products product %s scram-sha-256\n" % subnet)
    pg.extra_conf = ["ssl=on", "ssl_cert_file=" + os.path.join(pg.dir, "server.crt"),
                     "ssl_key_file=" + os.path.join(pg.dir, "server.key"),
                     "listen_addresses=127.0.0.1," + gateway]
    pg.start()
    pg.psql("CREATE ROLE product LOGIN PASSWORD '%s'" % password)
    pg.psql("CREATE DATABASE products OWNER product")
    print(pg.port, flush=True)
    while True:
        time.sleep(1)
finally:
    pg.cleanup()
PY
  pg_pid=$!
  local deadline=$(( $(date +%s) + START_GUARD ))
  while [ "$(date +%s)" -lt "$deadline" ] && kill -0 "$pg_pid" 2>/dev/null; do
    pg_port=$(head -n 1 "$work/pg.out")
    [ -n "$pg_port" ] && return 0
    sleep 0.2
  done
  return 1
}
if ! start_postgres; then
  fail "PostgreSQL for docs/postgres.md" "$(tail -n 3 "$work/pg.err")"
else
  docs_block postgres.md postgres-run >"$work/pg-run.sh"
  if ! grep -q 'sslmode=verify-full&sslrootcert=' "$work/pg-run.sh"; then
    fail "docs/postgres.md" "no docker run with verify-full and sslrootcert between image-test markers"
  else
    start_from_docs 0 "$work/pg-run.sh"
    if wait_serving; then
      created=$(client --addr "127.0.0.1:$api_port" --ca /run/secrets/pc/ca.crt create --name "on postgres" 2>&1) || true
      listed=$(client --addr "127.0.0.1:$api_port" --ca /run/secrets/pc/ca.crt list 2>&1) || true
      if grep -q '"name":"on postgres"' <<<"$listed" && grep -q '"total_size":1' <<<"$listed"; then
        ok "docs/postgres.md's lines: TLS verify-full to PostgreSQL, CreateProduct and ListProducts"
      else
        fail "docs/postgres.md's lines" "create: $created list: $listed"
      fi
    else
      fail "docs/postgres.md's lines" "product.ProductService not SERVING: $(grep -v '"method"' "$work/server.log" | tail -n 3)"
    fi
    stop_from_docs
    [ "$stop_rc" = 0 ] || fail "stop on PostgreSQL" "exit status $stop_rc"

    sed -i 's#&sslrootcert=[^ '"'"']*##' "$work/pg-run.sh"
    start_from_docs 0 "$work/pg-run.sh"
    wait_live || true
    deadline=$(( $(date +%s) + START_GUARD ))
    while [ "$(date +%s)" -lt "$deadline" ] && ! grep -q 'root.crt' "$work/server.log" &&
      kill -0 "$server_pid" 2>/dev/null; do sleep 0.5; done
    out=$(client --insecure --addr "127.0.0.1:$health_port" health product.ProductService 2>&1) && rc=0 || rc=$?
    if [ "$rc" = 1 ] && grep -q NOT_SERVING <<<"$out" &&
      grep -q '/nonexistent/.postgresql/root.crt' "$work/server.log"; then
      ok "without sslrootcert: NOT_SERVING, the log names /nonexistent/.postgresql/root.crt"
    else
      fail "without sslrootcert" "health exit $rc: $out; log: $(tail -n 2 "$work/server.log")"
    fi
    stop_from_docs
  fi
fi
kill "$pg_pid" 2>/dev/null || true
wait "$pg_pid" 2>/dev/null || true
pg_pid=""

errs=$(podman_t run --rm "${LIMITS[@]}" --no-healthcheck --network none -v "$work/pc:/run/secrets/pc:ro" \
  -e TLS_CERT_FILE=/run/secrets/pc/server.crt -e TLS_KEY_FILE=/run/secrets/pc/server.key \
  "$IMAGE" 2>&1 >/dev/null) && rc=0 || rc=$?
if [ "$rc" = 2 ] && [ "$(wc -l <<<"$errs")" -eq 1 ] && grep -q 'secret' <<<"$errs"; then
  ok "no secret: refused, exit status 2: $errs"
else
  fail "start without a secret" "exit status $rc: $errs"
fi

size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
size_mb=$(( (size + 500000) / 1000000 ))
if [ "$size_mb" -le "$BUDGET_MB" ]; then
  ok "image size ${size_mb} MB (budget ${BUDGET_MB} MB)"
else
  fail "image size" "${size_mb} MB, over the budget of ${BUDGET_MB} MB"
fi

echo "image-test: $passed passed, $failed failed (build ${build_s} s, image ${size_mb} MB)"
[ "$failed" -eq 0 ]
