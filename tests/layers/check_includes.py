#!/usr/bin/env python3
"""The layering, checked two ways against the table that CMakeLists.txt
declares (written by the build as layers.txt: name|folder|uses|proto).

1. Every #include "..." of every file of every layer and program folder
   (headers that no file compiles included) names its own folder, a folder
   of a layer it uses (directly or through the layers those use), or a
   generated protobuf header when it links the protos. No "..", no path
   outside the tree.
2. The compiler agrees: for every pair of layers where A may not use B, one
   of B's headers is not found (__has_include) on A's include path (its view
   and the views of what it uses, as the build gives it); and one of A's own
   headers is. So a wrong-way include fails the build, not only this
   script.

Exit 0 when all holds; otherwise one line per fault and exit 1.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def read_table(path):
    rows = {}
    order = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            name, folder, uses, proto = line.split("|")
            rows[name] = {
                "folder": folder,
                "leaf": os.path.basename(folder),
                "uses": [u for u in uses.split(",") if u],
                "proto": proto == "1",
            }
            order.append(name)
    return rows, order


def closure(rows, name):
    """The layers name may use: its own uses and theirs, transitively."""
    seen, todo = set(), list(rows[name]["uses"])
    while todo:
        n = todo.pop()
        if n in seen or n not in rows:
            continue
        seen.add(n)
        todo.extend(rows[n]["uses"])
    return seen


def sources(src, folder):
    d = os.path.join(src, folder)
    return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith((".c", ".h")))


def check_text(src, rows):
    faults = []
    leaves = {r["leaf"]: n for n, r in rows.items() if not r["folder"].startswith("tools/")}
    for name, row in rows.items():
        allowed = {rows[n]["leaf"] for n in closure(rows, name) if n in rows}
        allowed.add(row["leaf"])
        uses_proto = row["proto"] or any(rows[n]["proto"] for n in closure(rows, name))
        for path in sources(src, row["folder"]):
            rel = os.path.relpath(path, src)
            with open(path, encoding="utf-8") as f:
                text = f.read()
            for inc in INCLUDE.findall(text):
                where = "%s: #include \"%s\"" % (rel, inc)
                if ".." in inc.split("/") or inc.startswith("/"):
                    faults.append("%s: a path out of the folder" % where)
                elif inc.endswith(".pb-c.h"):
                    if not uses_proto:
                        faults.append("%s: layer %s does not link the protos" % (where, name))
                elif "/" not in inc:
                    if not os.path.exists(os.path.join(os.path.dirname(path), inc)):
                        faults.append("%s: no such file beside it" % where)
                else:
                    top = inc.split("/")[0]
                    if top not in allowed:
                        owner = leaves.get(top, "no layer")
                        faults.append("%s: layer %s may not use %s (%s)" % (where, name, top, owner))
                    elif not os.path.exists(os.path.join(src, rows[leaves[top]]["folder"],
                                                         inc[len(top) + 1:])):
                        faults.append("%s: no such file" % where)
    return faults


def first_header(src, folder):
    hs = [p for p in sources(src, folder) if p.endswith(".h")]
    return os.path.basename(hs[0]) if hs else None


def compiles(compiler, include_dirs, text):
    with tempfile.TemporaryDirectory() as tmp:
        probe = os.path.join(tmp, "probe.c")
        with open(probe, "w") as f:
            f.write(text)
        cmd = [compiler, "-E", "-o", os.devnull, probe] + ["-I" + d for d in include_dirs]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        return p.returncode, p.stderr


def check_compiler(src, rows, views, compiler):
    """A header of each layer A may not use, included with A's path, must
    not be found; one of A's own must be."""
    faults, probes = [], 0
    layers = {n: r for n, r in rows.items() if os.path.isdir(os.path.join(views, n))}
    for name in layers:
        dirs = [os.path.join(views, n) for n in [name] + sorted(closure(rows, name))]
        # Probed with __has_include: whether the view finds the header, not
        # whether everything the header includes is found too.
        own = first_header(src, rows[name]["folder"])
        if own:
            inc = "%s/%s" % (rows[name]["leaf"], own)
            rc, err = compiles(compiler, dirs,
                               '#if !__has_include("%s")\n#error not found\n#endif\n' % inc)
            if rc != 0:
                faults.append("layer %s cannot find its own %s: %s" % (name, inc, err.strip()))
        for other in layers:
            if other == name or other in closure(rows, name):
                continue
            hdr = first_header(src, rows[other]["folder"])
            if not hdr:
                continue
            inc = "%s/%s" % (rows[other]["leaf"], hdr)
            probes += 1
            # The header itself must not be found (what it includes does not
            # matter here); the real include's failure is shown beside it.
            rc, err = compiles(compiler, dirs,
                               '#if __has_include("%s")\n#error found\n#endif\n' % inc)
            if rc != 0:
                faults.append("layer %s finds %s on its include path (%s may not use %s)"
                              % (name, inc, name, other))
    return faults, probes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", required=True)
    ap.add_argument("--table", required=True)
    ap.add_argument("--views", required=True)
    ap.add_argument("--compiler", required=True)
    a = ap.parse_args()
    rows, _ = read_table(a.table)
    if len(rows) < 5:
        print("layers: the table %s has %d rows; is the build configured?" % (a.table, len(rows)))
        return 1
    cfaults, probes = check_compiler(a.source, rows, a.views, a.compiler)
    faults = check_text(a.source, rows) + cfaults
    for f in faults:
        print(f)
    if faults:
        print("layers: %d fault(s)" % len(faults))
        return 1
    print("layers: %d folders, every include within its layers; the compiler refused all %d"
          " wrong-way includes probed" % (len(rows), probes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
