"""A throw-away PostgreSQL for tests and benchmarks: initdb into a fresh
temp directory, the postmaster on a loopback port (and a Unix socket in that
directory), stopped by PID. As root, PostgreSQL refuses to run, so the
cluster belongs to the `postgres` system user (the Debian package creates
it; else `nobody`) and runs under it via setpriv.

    with PgTemp() as pg:
        dsn = pg.create_database("t1")      # postgres://...@127.0.0.1:PORT/t1
        pg.stop_immediate()                 # as `pg_ctl stop -m immediate`
        pg.start()                          # same data, same port

Also a command line for manual use:
    pgtemp.py start [--fsync]   prints the DSN of database "postgres", runs until
                                SIGINT/SIGTERM, then stops it and removes the files
"""

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SUPERUSER = "product_test"


def find_bindir():
    """The directory with initdb and postgres, or None when not installed."""
    env = os.environ.get("PRODUCT_PG_BINDIR")
    cands = [env] if env else []
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    versions.sort(key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0,
                  reverse=True)
    cands += versions
    initdb = shutil.which("initdb")
    if initdb:
        cands.append(os.path.dirname(initdb))
    for d in cands:
        if d and os.access(os.path.join(d, "initdb"), os.X_OK) and \
                os.access(os.path.join(d, "postgres"), os.X_OK):
            return d
    return None


def _free_port():
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


class PgTemp:
    def __init__(self, fsync=False, port=None, extra_conf=()):
        self.bindir = find_bindir()
        if not self.bindir:
            raise RuntimeError("PostgreSQL binaries not found (apt-get install postgresql)")
        self.fsync = fsync
        self.extra_conf = list(extra_conf)
        self.port = port or _free_port()
        self.dir = tempfile.mkdtemp(prefix="product-pg-")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        self.proc = None
        self._user = None
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    self._user = pwd.getpwnam(name)
                    break
                except KeyError:
                    pass
            if self._user is None:
                raise RuntimeError("running as root and no unprivileged user to run PostgreSQL")
            os.chmod(self.dir, 0o700)
            os.chown(self.dir, self._user.pw_uid, self._user.pw_gid)
        self._initdb()

    def _cmd(self, args):
        if self._user is None:
            return args
        return ["setpriv", "--reuid=%d" % self._user.pw_uid, "--regid=%d" % self._user.pw_gid,
                "--clear-groups", "--"] + args

    def _run(self, args, **kw):
        return subprocess.run(self._cmd(args), capture_output=True, timeout=120, **kw)

    def _initdb(self):
        p = self._run([os.path.join(self.bindir, "initdb"), "-D", self.data, "-U", SUPERUSER,
                       "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
                      cwd=self.dir)
        if p.returncode != 0:
            raise RuntimeError("initdb failed: %s" % p.stderr.decode(errors="replace")[-2000:])

    def start(self, timeout=30):
        """Starts the postmaster (again) on the same port; returns once it
        accepts connections."""
        args = [os.path.join(self.bindir, "postgres"), "-D", self.data, "-p", str(self.port),
                "-k", self.dir, "-c", "listen_addresses=127.0.0.1",
                "-c", "fsync=%s" % ("on" if self.fsync else "off"),
                "-c", "max_connections=200", "-c", "shared_buffers=32MB"]
        for kv in self.extra_conf:
            args += ["-c", kv]
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(self._cmd(args), stdout=logf, stderr=logf, cwd=self.dir)
        logf.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited (%s): %s" % (self.proc.returncode,
                                                                self.log_tail()))
            if self.psql("SELECT 1", check=False).returncode == 0:
                return self
            time.sleep(0.1)
        raise RuntimeError("postgres not ready within %ss: %s" % (timeout, self.log_tail()))

    def log_tail(self, n=2000):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode(errors="replace")[-n:]
        except OSError:
            return ""

    def psql(self, sql, db="postgres", check=True):
        p = subprocess.run([os.path.join(self.bindir, "psql"), "-X", "-q", "-A", "-t",
                            "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
                            "-U", SUPERUSER, "-d", db, "-c", sql],
                           capture_output=True, timeout=60)
        if check and p.returncode != 0:
            raise RuntimeError("psql %r: %s" % (sql, p.stderr.decode(errors="replace")))
        return p

    def query(self, sql, db="postgres"):
        return self.psql(sql, db).stdout.decode().strip()

    def dsn(self, db="postgres"):
        return "postgres://%s@127.0.0.1:%d/%s?sslmode=disable" % (SUPERUSER, self.port, db)

    def socket_dsn(self, db="postgres"):
        """The same database through the Unix socket in the cluster's folder."""
        return "postgresql:///%s?host=%s&port=%d&user=%s" % (db, self.dir, self.port, SUPERUSER)

    def create_database(self, name):
        self.psql('CREATE DATABASE "%s"' % name)
        return self.dsn(name)

    def _signal_and_wait(self, sig, timeout=30):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self):
        """Fast shutdown (SIGINT to the postmaster, as pg_ctl -m fast)."""
        self._signal_and_wait(signal.SIGINT)

    def stop_immediate(self):
        """Immediate shutdown (SIGQUIT, as pg_ctl -m immediate): backends die
        without a clean goodbye, the next start runs crash recovery."""
        self._signal_and_wait(signal.SIGQUIT)

    def _pids(self):
        """The postmaster and its children (the backends and workers)."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        pids = [self.proc.pid]
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                pids.append(int(d))
        return pids

    def pause(self):
        """Every PostgreSQL process stopped (SIGSTOP): connections stay open
        and connects are accepted by the kernel, but nothing answers."""
        for pid in self._pids():
            os.kill(pid, signal.SIGSTOP)

    def resume(self):
        for pid in self._pids():
            os.kill(pid, signal.SIGCONT)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


def main(argv):
    if len(argv) < 2 or argv[1] != "start":
        print("usage: pgtemp.py start [--fsync]", file=sys.stderr)
        return 2

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    pg = PgTemp(fsync="--fsync" in argv)
    try:
        pg.start()
        print(pg.dsn(), flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        pg.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
