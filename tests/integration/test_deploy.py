"""Deployment artefacts, checked without a Docker engine or a cluster.

Dockerfile: the runtime stage (debian:bookworm-slim) is complete: every
shared library that ldd lists for each built binary belongs (dpkg -S) to a
package that the stage's apt-get install line installs, to one of their
dependencies, or to the base image (bookworm's Essential packages and their
dependencies; this machine is Debian 12, so its dpkg database answers for
the image's). Also: a numeric non-root USER, exec-form ENTRYPOINT, EXPOSE,
the three binaries copied from the build stage, and nothing copied in from
the build context (no key, certificate or secret).

deploy/k8s: every manifest parses (python3-yaml); the product-server
workloads agree with the server's contract: env names and flags exist in
`product-server --help`, ports agree with LISTEN_ADDR / HEALTH_LISTEN_ADDR,
grpc probes hit the health port with the right service names, secret files
(the key set, the revocation list or the secret, and the TLS pair) lie
inside whole-directory Secret mounts (no subPath, so a changed Secret
reaches a running pod) whose templates have those keys, the SQLite file
lies on the data volume, the security context is locked down, and the
grace period exceeds the drain. Finally the server is started with the
manifest's own environment (paths and ports mapped to the test's) and
answers the probes' health checks."""

import glob
import json
import os
import re
import shlex
import subprocess
import tempfile

import harness as h
from harness import expect_eq

SRC = h.SRC
BINARIES = ("product-server", "product-client", "mint-token")
DRAIN_S = 10
PRODUCT_IMAGE = "product-service"

# Essential: yes packages of Debian 12; debian:bookworm-slim has every one of
# them (and more: apt, libstdc++6 ... which we do not count on). Checked
# against this machine's dpkg database below.
BASE_ESSENTIAL = (
    "base-files", "base-passwd", "bash", "bsdutils", "coreutils", "dash", "debianutils",
    "diffutils", "dpkg", "findutils", "grep", "gzip", "hostname", "init-system-helpers",
    "libc-bin", "login", "ncurses-base", "ncurses-bin", "perl-base", "sed", "sysvinit-utils",
    "tar", "util-linux",
)


def fail(msg):
    raise AssertionError(msg)


# ------------------------------------------------------------- Dockerfile ---

def dockerfile_stages():
    """[(base image, stage name, [(instruction, argument text)])] with line
    continuations joined and comments dropped."""
    with open(os.path.join(SRC, "Dockerfile")) as f:
        text = f.read()
    lines, cur = [], ""
    for raw in text.splitlines():
        s = raw.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if cur and s.startswith("#"):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        lines.append(cur + s)
        cur = ""
    stages = []
    for line in lines:
        instr, _, arg = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            parts = arg.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append((parts[0], name, []))
        elif stages:
            stages[-1][2].append((instr, arg.strip()))
    return stages


def runtime_stage():
    stages = dockerfile_stages()
    if len(stages) < 2:
        fail("the Dockerfile needs a build and a runtime stage")
    return stages[-1]


def apt_installed_packages(instructions):
    """Packages named on the apt-get install commands of RUN instructions."""
    pkgs = []
    for instr, arg in instructions:
        if instr != "RUN":
            continue
        for cmd in re.split(r"&&|;|\|\|", arg):
            words = shlex.split(cmd)
            if len(words) >= 2 and words[0] in ("apt-get", "apt") and "install" in words:
                after = words[words.index("install") + 1:]
                pkgs += [w for w in after if not w.startswith("-")]
    return pkgs


def dpkg_status():
    """{package: (depends, provides)} of this machine's installed packages;
    depends is a list of alternative groups."""
    out = subprocess.run(["dpkg-query", "-W", "-f",
                          "${Package}\t${Status}\t${Pre-Depends}\t${Depends}\t${Provides}\n"],
                         capture_output=True, text=True, check=True).stdout
    db = {}
    for line in out.splitlines():
        pkg, status, pre, dep, prov = (line.split("\t") + [""] * 5)[:5]
        if not status.endswith(" installed"):
            continue
        groups = []
        for field in (pre, dep):
            for item in filter(None, (x.strip() for x in field.split(","))):
                groups.append([re.sub(r"[\s(:].*", "", alt.strip()) for alt in item.split("|")])
        provides = [re.sub(r"[\s(].*", "", p.strip()) for p in prov.split(",") if p.strip()]
        db[pkg] = (groups, provides)
    return db


def closure(roots, db):
    """roots and everything they depend on, recursively (among installed
    packages; an alternative or virtual package resolves to what is installed)."""
    providers = {}
    for pkg, (_, provides) in db.items():
        for p in provides:
            providers.setdefault(p, []).append(pkg)
    seen, todo = set(), list(roots)
    while todo:
        pkg = todo.pop()
        if pkg in seen:
            continue
        if pkg not in db:
            fail("package %s is not installed here, so its dependencies are unknown "
                 "(tools/install-deps.sh installs the runtime packages with the -dev ones)"
                 % pkg)
        seen.add(pkg)
        for group in db[pkg][0]:
            for alt in group:
                found = [alt] if alt in db else providers.get(alt, [])
                if found:
                    todo.extend(found)
                    break
    return seen


def linked_libraries(binary):
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libs = []
    for line in out.splitlines():
        line = line.strip()
        if "not found" in line:
            fail("%s: %s" % (os.path.basename(binary), line))
        m = re.match(r"\S+ => (/\S+)", line) or re.match(r"(/\S+) \(", line)
        if m:
            libs.append(m.group(1))
    return libs


def owner_packages(paths):
    """{path: the package that ships it}, with one dpkg -S for all (each
    path also tried in its resolved and /usr-merged spellings)."""
    spellings = {}
    for path in paths:
        cands = [path, os.path.realpath(path)]
        for p in list(cands):
            cands.append(p[4:] if p.startswith("/usr/") else "/usr" + p)
        spellings[path] = cands
    allp = sorted({c for cands in spellings.values() for c in cands})
    # Exit status 1 when some spelling is unknown; the others are listed.
    out = subprocess.run(["dpkg", "-S"] + allp, capture_output=True, text=True).stdout
    shipped = {}
    for line in out.splitlines():
        pkgs, _, p = line.partition(": ")
        shipped[p.strip()] = pkgs.split(",")[0].split(":")[0].strip()
    owners = {}
    for path, cands in spellings.items():
        found = [shipped[c] for c in cands if c in shipped]
        if not found:
            fail("no package ships %s" % path)
        owners[path] = found[0]
    return owners


_dpkg_db = None


def installed_db():
    global _dpkg_db
    if _dpkg_db is None:
        _dpkg_db = dpkg_status()
    return _dpkg_db


def test_base_list_is_essential_packages_here():
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Essential}\n"],
                         capture_output=True, text=True, check=True).stdout
    essential = {l.split()[0] for l in out.splitlines() if l.endswith(" yes")}
    missing = [p for p in BASE_ESSENTIAL if p not in essential]
    if missing:
        fail("not Essential (or not installed) here: %s" % missing)
    # libstdc++6 is not Essential: the gRPC core needs it, so the runtime
    # stage must name it instead of counting on the base image.
    if "libstdc++6" in closure(BASE_ESSENTIAL, installed_db()):
        fail("libstdc++6 unexpectedly in the Essential closure")


def test_runtime_stage_installs_every_linked_library():
    base, _, instructions = runtime_stage()
    expect_eq(base, "debian:bookworm-slim", "runtime base image")
    pkgs = apt_installed_packages(instructions)
    if not pkgs:
        fail("the runtime stage installs no package")
    dev = [p for p in pkgs if p.endswith("-dev") or p in ("build-essential", "cmake", "gcc")]
    if dev:
        fail("build packages in the runtime stage: %s" % dev)
    db = installed_db()
    have = closure(pkgs, db) | closure(BASE_ESSENTIAL, db)
    sanitizer = re.compile(r"/lib(asan|ubsan|lsan|tsan)\.so")
    libs = {}
    for b in BINARIES:
        for lib in linked_libraries(os.path.join(h.BIN, b)):
            if h.SANITIZE and sanitizer.search(lib):
                continue  # this test build links sanitizer runtimes; the image's does not
            libs.setdefault(lib, []).append(b)
    if len(libs) < 5:
        fail("ldd listed too few libraries to be believed: %s" % sorted(libs))
    owners = owner_packages(libs)
    problems = ["%s: %s (package %s)" % (",".join(libs[l]), l, owners[l])
                for l in sorted(libs) if owners[l] not in have]
    if problems:
        fail("libraries the runtime stage does not install:\n  " + "\n  ".join(problems))
    # Each package named is needed by some library (no dead weight).
    needed = set(owners.values())
    for p in pkgs:
        if not closure([p], db) & needed:
            fail("runtime package %s provides no linked library" % p)


def test_runtime_stage_user_entrypoint_expose_and_nothing_secret():
    _, _, instructions = runtime_stage()
    build_names = [name for _, name, _ in dockerfile_stages()[:-1]]
    users = [a for i, a in instructions if i == "USER"]
    if not users:
        fail("no USER in the runtime stage")
    uid = users[-1].split(":")[0]
    if not uid.isdigit() or int(uid) == 0:
        fail("USER %r is not a numeric non-root user" % users[-1])
    entry = [a for i, a in instructions if i == "ENTRYPOINT"]
    if not entry:
        fail("no ENTRYPOINT")
    try:
        argv = json.loads(entry[-1])
    except ValueError:
        fail("ENTRYPOINT is not in exec form: %s" % entry[-1])
    if not (isinstance(argv, list) and argv and argv[0].endswith("/product-server")):
        fail("ENTRYPOINT does not run product-server: %r" % argv)
    exposed = set()
    for i, a in instructions:
        if i == "EXPOSE":
            exposed |= {int(p.split("/")[0]) for p in a.split()}
    for port in (50051, 8081):
        if port not in exposed:
            fail("port %d not exposed (%s)" % (port, sorted(exposed)))
    copied, dest = set(), None
    for i, a in instructions:
        if i in ("COPY", "ADD"):
            words = a.split()
            opts = [w for w in words if w.startswith("--")]
            srcs = [w for w in words if not w.startswith("--")]
            if i == "ADD" or not any(o.split("=", 1)[1] in build_names for o in opts
                                     if o.startswith("--from=")):
                fail("the runtime stage copies from outside the build stage: %s %s" % (i, a))
            dest = srcs[-1]
            copied |= {os.path.basename(s) for s in srcs[:-1]}
        if i in ("ENV", "ARG") and re.search(r"SECRET|PASSWORD|TOKEN|_KEY\b|KEY_FILE", a):
            fail("secret-looking %s in the runtime stage: %s" % (i, a))
    for b in BINARIES:
        if b not in copied:
            fail("%s is not copied into the runtime stage" % b)
    if not argv[0].startswith(dest.rstrip("/") + "/"):
        fail("ENTRYPOINT %s is not where the binaries go (%s)" % (argv[0], dest))


def test_build_stage_runs_ci_build_and_tests():
    stages = dockerfile_stages()
    base, _, instructions = stages[0]
    expect_eq(base, "debian:bookworm", "build base image")
    runs = " ".join(a for i, a in instructions if i == "RUN")
    for what in ("tools/install-deps.sh", "tools/test.sh", "ctest", "-L unit",
                 "tools/build-release.sh"):
        if what not in runs:
            fail("the build stage does not run %s" % what)


def test_dockerignore_keeps_secrets_and_builds_out():
    with open(os.path.join(SRC, ".dockerignore")) as f:
        pats = {l.strip() for l in f if l.strip() and not l.startswith("#")}
    for p in (".git", "build", "build-*", "secrets", "certs/dev", "data", "**/*.key",
              "**/*.pem"):
        if p not in pats:
            fail(".dockerignore lacks %s" % p)


# ------------------------------------------------------------- manifests ---

def manifests():
    """[(path, document)] of every YAML document under deploy/k8s."""
    import yaml  # noqa: E402 - python3-yaml
    docs = []
    files = sorted(glob.glob(os.path.join(SRC, "deploy", "k8s", "**", "*.yaml"), recursive=True)
                   + glob.glob(os.path.join(SRC, "deploy", "k8s", "**", "*.yml"), recursive=True))
    if not files:
        fail("no manifests under deploy/k8s")
    for path in files:
        with open(path) as f:
            for d in yaml.safe_load_all(f):
                if d is None:
                    continue
                if not isinstance(d, dict) or "apiVersion" not in d or "kind" not in d:
                    fail("%s: a document without apiVersion/kind" % path)
                docs.append((path, d))
    return docs


def help_contract():
    """(flags, env names) that product-server --help documents."""
    p = subprocess.run([os.path.join(h.BIN, "product-server"), "--help"], capture_output=True,
                       text=True, timeout=20)
    expect_eq(p.returncode, 0, "product-server --help")
    flags = set(re.findall(r"(--[a-z][a-z0-9-]*)", p.stdout))
    envs = set(re.findall(r"env ([A-Z][A-Z0-9_]*)", p.stdout))
    if "LISTEN_ADDR" not in envs or "--listen" not in flags:
        fail("cannot read the flags from --help:\n" + p.stdout)
    return flags, envs


def workloads(docs):
    """(path, workload, pod spec, product-server container) for each."""
    out = []
    for path, d in docs:
        if d["kind"] in ("StatefulSet", "Deployment"):
            spec = d["spec"]["template"]["spec"]
            for c in spec["containers"]:
                if PRODUCT_IMAGE in c.get("image", ""):
                    out.append((path, d, spec, c))
    if not out:
        fail("no workload runs the %s image" % PRODUCT_IMAGE)
    return out


def env_of(c):
    """{name: literal value or None (valueFrom)}."""
    return {e["name"]: e.get("value") for e in c.get("env", [])}


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


def mount_for(c, path):
    """The volumeMount whose mountPath contains path (the deepest)."""
    best = None
    for m in c.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        if path.startswith(mp + "/") and (best is None or len(mp) > len(best["mountPath"])):
            best = m
    return best


def secret_templates(docs):
    return {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "Secret"}


def dockerfile_uid():
    users = [a for i, a in runtime_stage()[2] if i == "USER"]
    return int(users[-1].split(":")[0])


def test_every_manifest_parses_and_names_its_objects():
    docs = manifests()
    kinds = {d["kind"] for _, d in docs}
    for k in ("StatefulSet", "Service", "PodDisruptionBudget", "Secret"):
        if k not in kinds:
            fail("no %s among the manifests (%s)" % (k, sorted(kinds)))
    for path, d in docs:
        if d["kind"] != "Kustomization" and not d.get("metadata", {}).get("name"):
            fail("%s: a %s without a name" % (path, d["kind"]))


def test_env_and_flags_exist_in_the_server_help():
    flags, envs = help_contract()
    envs.add("JWT_SECRET")
    for path, _, _, c in workloads(manifests()):
        env = env_of(c)
        refs = set()
        for v in env.values():
            refs |= set(re.findall(r"\$\(([A-Z0-9_]+)\)", v or ""))
        for name in env:
            if name not in envs and name not in refs:
                fail("%s: env %s is neither the server's nor used by another value" %
                     (path, name))
        if "JWT_SECRET" in env:
            fail("%s: the JWT secret itself in the manifest; mount a file instead" % path)
        # (A container may pass no flag at all: a list, not a loop of checks.)
        unknown = [a for a in (c.get("command") or [])[1:] + (c.get("args") or [])
                   if a.startswith("--") and a.split("=", 1)[0] not in flags]
        if unknown:
            fail("%s: flag(s) %s not in product-server --help" % (path, unknown))


def test_ports_and_probes_agree_with_listen_addresses():
    for path, _, _, c in workloads(manifests()):
        env = env_of(c)
        ports = {p.get("name"): p["containerPort"] for p in c["ports"]}
        expect_eq(ports.get("grpc"), port_of(env["LISTEN_ADDR"]), path + ": grpc containerPort")
        health = port_of(env["HEALTH_LISTEN_ADDR"])
        expect_eq(ports.get("health"), health, path + ": health containerPort")
        if "METRICS_LISTEN_ADDR" in env:
            expect_eq(ports.get("metrics"), port_of(env["METRICS_LISTEN_ADDR"]),
                      path + ": metrics containerPort")
        ready, live = c.get("readinessProbe", {}), c.get("livenessProbe", {})
        for name, probe, service in (("readiness", ready, "product.ProductService"),
                                     ("liveness", live, "")):
            g = probe.get("grpc")
            if not g:
                fail("%s: the %s probe is not a grpc probe" % (path, name))
            expect_eq(g["port"], health, "%s: %s probe port" % (path, name))
            expect_eq(g.get("service", ""), service, "%s: %s probe service" % (path, name))
        if "startupProbe" in c:
            expect_eq(c["startupProbe"]["grpc"]["port"], health, path + ": startup probe port")


def check_secret_file(path, c, spec, secrets, var, value, want_type=None):
    m = mount_for(c, value)
    if m is None:
        fail("%s: %s=%s is not inside a volume mount" % (path, var, value))
    if not m.get("readOnly"):
        fail("%s: the mount of %s is not read-only" % (path, var))
    if "subPath" in m:
        fail("%s: %s is mounted with subPath (no updates on Secret change)" % (path, var))
    vol = next((v for v in spec["volumes"] if v["name"] == m["name"]), None)
    if not vol or "secret" not in vol:
        fail("%s: %s is not on a Secret volume" % (path, var))
    name = vol["secret"]["secretName"]
    tpl = secrets.get(name)
    if tpl is None:
        fail("%s: no template for Secret %s" % (path, name))
    key = os.path.relpath(value, m["mountPath"])
    for item in vol["secret"].get("items", []):
        if item["path"] == key:
            key = item["key"]
    keys = set(tpl.get("data") or {}) | set(tpl.get("stringData") or {})
    if key not in keys:
        fail("%s: %s reads key %s, Secret %s has %s" % (path, var, key, name, sorted(keys)))
    if want_type:
        expect_eq(tpl.get("type"), want_type, "type of Secret %s" % name)
    mode = vol["secret"].get("defaultMode", 0o644)
    if mode & 0o007:
        fail("%s: Secret %s files are readable by others (mode %o)" % (path, name, mode))
    return tpl, key


def jwt_file_var(path, env):
    """JWT_KEYS_FILE or JWT_SECRET_FILE, whichever the workload sets (one
    of them, not both: the server refuses both)."""
    have = [v for v in ("JWT_KEYS_FILE", "JWT_SECRET_FILE") if env.get(v)]
    if len(have) != 1:
        fail("%s: set exactly one of JWT_KEYS_FILE and JWT_SECRET_FILE (%s)" % (path, have))
    return have[0]


def test_secret_and_tls_files_lie_in_mounted_secrets():
    docs = manifests()
    secrets = secret_templates(docs)
    for path, _, spec, c in workloads(docs):
        env = env_of(c)
        var = jwt_file_var(path, env)
        check_secret_file(path, c, spec, secrets, var, env[var])
        if env.get("JWT_REVOCATIONS_FILE"):
            check_secret_file(path, c, spec, secrets, "JWT_REVOCATIONS_FILE",
                              env["JWT_REVOCATIONS_FILE"])
        cert_tpl, _ = check_secret_file(path, c, spec, secrets, "TLS_CERT_FILE",
                                        env["TLS_CERT_FILE"], "kubernetes.io/tls")
        key_tpl, _ = check_secret_file(path, c, spec, secrets, "TLS_KEY_FILE",
                                       env["TLS_KEY_FILE"], "kubernetes.io/tls")
        if cert_tpl is not key_tpl:
            fail("%s: certificate and key come from different Secrets" % path)
        if env.get("INSECURE"):
            fail("%s: INSECURE set in a TLS deployment" % path)


def test_secret_templates_hold_placeholders_only():
    import base64  # noqa: E402
    for name, tpl in secret_templates(manifests()).items():
        values = dict(tpl.get("stringData") or {})
        for k, v in (tpl.get("data") or {}).items():
            values[k] = base64.b64decode(v or "").decode("utf-8", "replace")
        for k, v in values.items():
            if "BEGIN" in v or len(v) >= 32:
                fail("Secret %s key %s holds what may be real material" % (name, k))


def test_placeholder_jwt_secret_is_refused_by_the_server():
    """The signing-key template's placeholder (a key set or a secret,
    whichever the workloads read) does not start a server."""
    docs = manifests()
    secrets = secret_templates(docs)
    for path, _, _, c in workloads(docs):
        env = env_of(c)
        var = jwt_file_var(path, env)
        name = os.path.basename(env[var])
        jwt = [t for t in secrets.values() if name in (t.get("stringData") or {})]
        if not jwt:
            fail("no Secret template has a stringData key %s" % name)
        with tempfile.NamedTemporaryFile("w", suffix="-jwt") as f:
            f.write(jwt[0]["stringData"][name])
            f.flush()
            code, _, err = h.run_server_once("--insecure", "--store", "memory", "--listen",
                                             "127.0.0.1:0", env={var: f.name})
            expect_eq(code, 2, "%s: exit status with the placeholder %s (%s)" % (
                path, name, err.strip()))
            # Refused for the placeholder itself, not for anything else that
            # exits 2 (a missing secret, a bad flag, a port): one line that
            # names the file and says what is wrong with its content.
            why = {"JWT_KEYS_FILE": "key set %s: not valid JSON" % f.name,
                   "JWT_SECRET_FILE": "the JWT secret from JWT_SECRET_FILE is %d bytes; at "
                   "least 32 are required" % len(jwt[0]["stringData"][name].encode())}[var]
            lines = err.splitlines()
            if len(lines) != 1 or not lines[0].startswith("product-server: " + why):
                fail("%s: the placeholder %s is not refused as such: want one line "
                     "'product-server: %s...', got %r" % (path, name, why, err))


def test_sqlite_store_is_on_the_data_volume():
    for path, d, spec, c in workloads(manifests()):
        env = env_of(c)
        if "STORE" in env and env["STORE"] is None:
            # From a Secret (the PostgreSQL variant's URI): no state in the pod.
            continue
        store = env.get("STORE", "sqlite:./data/products.db")
        if not store.startswith("sqlite:"):
            continue  # a PostgreSQL variant keeps no state in the pod
        db = store[len("sqlite:"):]
        if not db.startswith("/"):
            fail("%s: STORE %s is relative" % (path, store))
        m = mount_for(c, db)
        if m is None or m.get("readOnly"):
            fail("%s: %s is not on a writable volume" % (path, db))
        claims = {t["metadata"]["name"] for t in d["spec"].get("volumeClaimTemplates", [])}
        pvcs = {v["name"] for v in spec.get("volumes", []) if "persistentVolumeClaim" in v}
        if m["name"] not in claims | pvcs:
            fail("%s: the store's volume %s is not a persistent claim" % (path, m["name"]))
        if d["kind"] == "StatefulSet" and m["name"] in claims:
            continue
        if d["spec"].get("replicas", 1) > 1:
            fail("%s: more than one replica on a SQLite store" % path)


def test_security_context_and_grace_period():
    uid = dockerfile_uid()
    for path, _, spec, c in workloads(manifests()):
        pod = spec.get("securityContext", {})
        sc = c.get("securityContext", {})

        def get(key):
            return sc.get(key, pod.get(key))
        expect_eq(get("runAsNonRoot"), True, path + ": runAsNonRoot")
        expect_eq(get("runAsUser"), uid, path + ": runAsUser (the Dockerfile's USER)")
        expect_eq(sc.get("readOnlyRootFilesystem"), True, path + ": readOnlyRootFilesystem")
        expect_eq(sc.get("allowPrivilegeEscalation"), False, path + ": allowPrivilegeEscalation")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            fail("%s: capabilities not dropped" % path)
        expect_eq((get("seccompProfile") or {}).get("type"), "RuntimeDefault",
                  path + ": seccompProfile")
        grace = spec.get("terminationGracePeriodSeconds", 30)
        if grace < DRAIN_S + 5:
            fail("%s: terminationGracePeriodSeconds %s is not above the %d s drain" %
                 (path, grace, DRAIN_S))
        res = c.get("resources", {})
        for k in ("requests", "limits"):
            if "memory" not in res.get(k, {}):
                fail("%s: no memory %s" % (path, k))


def test_services_and_pdb_select_the_pods():
    docs = manifests()
    for path, d, spec, c in workloads(docs):
        labels = d["spec"]["template"]["metadata"]["labels"]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}

        def selects(sel):
            return sel and all(labels.get(k) == v for k, v in sel.items())
        svcs = [s for _, s in docs if s["kind"] == "Service" and selects(s["spec"]["selector"])]
        if not svcs:
            fail("%s: no Service selects the pods" % path)
        for s in svcs:
            for p in s["spec"]["ports"]:
                t = p.get("targetPort", p["port"])
                if (ports.get(t) if isinstance(t, str) else t) != ports["grpc"]:
                    fail("Service %s port %s does not reach the grpc port" %
                         (s["metadata"]["name"], p))
        if d["kind"] == "StatefulSet":
            names = {s["metadata"]["name"] for s in svcs if s["spec"].get("clusterIP") == "None"}
            if d["spec"]["serviceName"] not in names:
                fail("%s: serviceName %s is not a headless Service of these pods" %
                     (path, d["spec"]["serviceName"]))
        pdbs = [p for _, p in docs if p["kind"] == "PodDisruptionBudget" and
                selects(p["spec"]["selector"]["matchLabels"])]
        if not pdbs:
            fail("%s: no PodDisruptionBudget covers the pods" % path)


def test_server_starts_with_the_manifest_env_and_answers_the_probes():
    """The StatefulSet's environment, with mount paths moved under a temp
    dir (a generated certificate and secret in them) and ports moved to free
    ones, starts the real server; the probes' health checks answer SERVING."""
    docs = manifests()
    path, _, _, c = next(w for w in workloads(docs) if w[1]["kind"] == "StatefulSet")
    env = env_of(c)
    tmp = tempfile.mkdtemp(prefix="deploy-it-")
    mounts = {m["mountPath"]: os.path.join(tmp, m["name"]) for m in c["volumeMounts"]}
    for d in mounts.values():
        os.makedirs(d)

    def local(p):
        for mp, d in mounts.items():
            if p.startswith(mp.rstrip("/") + "/"):
                return os.path.join(d, p[len(mp.rstrip("/")) + 1:])
        return p
    cert, key = local(env["TLS_CERT_FILE"]), local(env["TLS_KEY_FILE"])
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    if env.get("JWT_KEYS_FILE"):
        with open(local(env["JWT_KEYS_FILE"]), "w") as f:
            json.dump({"keys": [{"kty": "oct", "kid": "deploy-it", "alg": "HS256",
                                 "k": h.b64url(os.urandom(32))}]}, f)
    else:
        with open(local(env["JWT_SECRET_FILE"]), "w") as f:
            f.write(os.urandom(24).hex() + "\n")
    if env.get("JWT_REVOCATIONS_FILE"):
        with open(local(env["JWT_REVOCATIONS_FILE"]), "w") as f:
            f.write("# nothing revoked\n")
    health_port = h.free_port()
    run_env = {}
    for k, v in env.items():
        if v is None or "$(" in v or k in ("ADVERTISE_ADDR", "ETCD_ENDPOINTS"):
            continue  # from the cluster (downward API, optional ConfigMap)
        if k.endswith("_FILE"):
            v = local(v)
        elif k == "STORE" and v.startswith("sqlite:"):
            v = "sqlite:" + local(v[len("sqlite:"):])
        elif k == "LISTEN_ADDR":
            continue  # the harness passes --listen 127.0.0.1:0
        elif k == "HEALTH_LISTEN_ADDR":
            v = "127.0.0.1:%d" % health_port
        elif k.endswith("_LISTEN_ADDR"):
            v = "127.0.0.1:%d" % h.free_port()
        run_env[k] = v
    srv = h.Server(env=run_env, insecure=False, store=run_env.get("STORE", "memory"))
    srv.env.pop("JWT_SECRET", None)  # the mounted file, as in the pod
    try:
        srv.start()
        pb = h.stubs()[1]
        with h.Api("127.0.0.1:%d" % health_port) as api:
            for probe in ("readinessProbe", "livenessProbe"):
                service = c[probe]["grpc"].get("service", "")
                expect_eq(api.health_check(service).status,
                          pb.HealthCheckResponse.SERVING, "%s (%r)" % (probe, service))
        start = srv.wait_log(lambda l: l.get("msg") == "product-server serving")
        if start.get("insecure"):
            fail("the manifest's configuration serves plaintext")
        if env.get("JWT_KEYS_FILE"):
            expect_eq(start.get("jwt_keys"), "deploy-it", "key set in force")
        expect_eq(srv.stop(), 0, "exit status")
        if not os.path.exists(local(env["STORE"][len("sqlite:"):])):
            fail("the SQLite file was not created on the data volume")
    finally:
        srv.cleanup()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    h.main([
        test_base_list_is_essential_packages_here,
        test_runtime_stage_installs_every_linked_library,
        test_runtime_stage_user_entrypoint_expose_and_nothing_secret,
        test_build_stage_runs_ci_build_and_tests,
        test_dockerignore_keeps_secrets_and_builds_out,
        test_every_manifest_parses_and_names_its_objects,
        test_env_and_flags_exist_in_the_server_help,
        test_ports_and_probes_agree_with_listen_addresses,
        test_secret_and_tls_files_lie_in_mounted_secrets,
        test_secret_templates_hold_placeholders_only,
        test_placeholder_jwt_secret_is_refused_by_the_server,
        test_sqlite_store_is_on_the_data_volume,
        test_security_context_and_grace_period,
        test_services_and_pdb_select_the_pods,
        test_server_starts_with_the_manifest_env_and_answers_the_probes,
    ])
