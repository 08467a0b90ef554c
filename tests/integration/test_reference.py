"""The man pages (docs/man) and the binaries' --help agree.

For each binary: the long flags --help names are exactly the flags the page's
OPTIONS section lists as entries (.TP tags), and the environment variables
--help names are exactly the entries of its ENVIRONMENT section. No flag the
binary does not have appears anywhere else in the page (in EXAMPLES, a flag
of any of the three binaries). Each page renders without a groff warning.
The comparison is also run on a page and a help text with one flag or
variable added to one side only, to show that it notices.

The reasons product-server gives for closing an abusive connection (the
reason label of product_abusive_connections_closed_total, from the code's
reason table, every one a series from the start) are exactly the entries
of the list in the page's CONNECTION LIMITS AND OVERLOAD; also checked on a
page with one reason dropped and one added."""

import os
import re
import shutil
import subprocess
import urllib.request

import harness as h
from harness import expect_eq

MAN_DIR = os.path.join(h.SRC, "docs", "man")
PAGES = {
    "product-server": "product-server.8",
    "mint-token": "mint-token.1",
    "product-client": "product-client.1",
}

FLAG_RE = re.compile(r"(?<![\w-])(--[a-z][a-z0-9]*(?:-[a-z0-9]+)*)")
ENV_NAME = r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*"
# How a --help text names a variable: "env NAME", "$NAME", "NAME=value",
# or a NAME with an underscore in prose (JWT_SECRET_FILE).
# A placeholder after a flag (--discover ETCD_URL) is not a variable.
HELP_ENV_RES = (
    re.compile(r"\benv (" + ENV_NAME + r")\b"),
    re.compile(r"\$(" + ENV_NAME + r")\b"),
    re.compile(r"(?<![\w$])(" + ENV_NAME + r")="),
)
PROSE_ENV_RE = re.compile(r"(?<![\w$])([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\b")
PLACEHOLDER_RE = re.compile(r"--[a-z][a-z0-9-]* (" + ENV_NAME + r")\b")
# gRPC status names, HTTP/2 error codes and frame names look like variables in prose but
# are not ("RESOURCE_EXHAUSTED", "GOAWAY ENHANCE_YOUR_CALM").
CODE_NAMES = {
    "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "OUT_OF_RANGE", "DATA_LOSS", "NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR",
    "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR",
    "REFUSED_STREAM", "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM",
    "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED", "NOT_SERVING",
    "RST_STREAM", "END_STREAM", "END_HEADERS", "WINDOW_UPDATE", "PUSH_PROMISE",
}


def help_text(binary):
    p = subprocess.run([os.path.join(h.BIN, binary), "--help"], capture_output=True,
                       text=True, timeout=20 * h.SLOW)
    expect_eq(p.returncode, 0, "%s --help exit status" % binary)
    return p.stdout


def help_flags(text):
    return set(FLAG_RE.findall(text))


def help_envs(text):
    names = set(PROSE_ENV_RE.findall(text)) - set(PLACEHOLDER_RE.findall(text)) - CODE_NAMES
    for r in HELP_ENV_RES:
        names |= set(r.findall(text))
    return names


# ------------------------------------------------------------ roff reading ---

def unescape(s):
    """The text a roff line shows, near enough to read flags and names."""
    s = re.sub(r"\\f(\[[^\]]*\]|.)", "", s)  # font changes
    s = s.replace("\\-", "-").replace("\\(aq", "'").replace("\\(dq", '"')
    s = s.replace("\\(bu", "*").replace("\\e", "\\")
    s = re.sub(r"\\[&c]", "", s)
    return s


def macro_text(line):
    """A request line's arguments as text (.BI "--x " Y -> --x Y), or the line."""
    if not line.startswith((".", "'")):
        return unescape(line)
    m = re.match(r"[.'][A-Za-z]+\s*(.*)", line)
    args = m.group(1) if m else ""
    words = re.findall(r'"((?:[^"]|"")*)"|(\S+)', args)
    # .BI, .BR, ... alternate fonts and join their words; .B, .I join with spaces.
    sep = "" if re.match(r"[.'](BI|BR|IB|IR|RB|RI)\b", line) else " "
    return unescape(sep.join(q if q or not w else w for q, w in words))


def sections(page_text):
    """{SECTION NAME: [source lines]}, comments dropped."""
    out = {}
    current = None
    for line in page_text.splitlines():
        if line.startswith(('.\\"', "'\\\"")):
            continue
        m = re.match(r"\.SH\s+\"?([^\"]*)\"?\s*$", line)
        if m:
            current = m.group(1).strip()
            if current in out:
                raise AssertionError("section %s appears twice" % current)
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return out


def tags(lines):
    """The tag line of every .TP entry, as text."""
    found = []
    for i, line in enumerate(lines):
        if re.match(r"\.TP\b", line):
            if i + 1 >= len(lines) or re.match(r"\.(TP|SH|SS|PP|IP|RS|RE)\b", lines[i + 1]):
                raise AssertionError(".TP without a tag line: %r" % lines[i:i + 2])
            found.append(macro_text(lines[i + 1]).strip())
    return found


def page_flags_in_options(secs):
    if "OPTIONS" not in secs:
        raise AssertionError("no OPTIONS section")
    flags = []
    for tag in tags(secs["OPTIONS"]):
        if not tag.startswith("-"):
            continue  # a value list inside an option (memory, sqlite:PATH, ...)
        found = FLAG_RE.findall(tag)
        if not found:
            raise AssertionError("OPTIONS entry %r names no long flag" % tag)
        flags.extend(found)
    dups = sorted({f for f in flags if flags.count(f) > 1})
    if dups:
        raise AssertionError("OPTIONS lists %s more than once" % ", ".join(dups))
    return set(flags)


def page_envs(secs):
    names = []
    for tag in tags(secs.get("ENVIRONMENT", [])):
        if not re.fullmatch(ENV_NAME, tag):
            raise AssertionError("ENVIRONMENT entry %r is not one variable name" % tag)
        names.append(tag)
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise AssertionError("ENVIRONMENT lists %s more than once" % ", ".join(dups))
    return set(names)


def flags_in(lines):
    return set(FLAG_RE.findall("\n".join(macro_text(l) for l in lines)))


def differences(binary, help_out, page_text, all_flags):
    """Every disagreement between a --help text and a man page, as sentences."""
    problems = []
    secs = sections(page_text)
    hf, he = help_flags(help_out), help_envs(help_out)
    pf, pe = page_flags_in_options(secs), page_envs(secs)
    for f in sorted(hf - pf):
        problems.append("%s --help has %s, its man page's OPTIONS does not" % (binary, f))
    for f in sorted(pf - hf):
        problems.append("%s man page's OPTIONS has %s, --help does not" % (binary, f))
    for e in sorted(he - pe):
        problems.append("%s --help names %s, its man page's ENVIRONMENT does not" % (binary, e))
    for e in sorted(pe - he):
        problems.append("%s man page's ENVIRONMENT has %s, --help does not" % (binary, e))
    for name, lines in secs.items():
        allowed = all_flags if name == "EXAMPLES" else hf
        for f in sorted(flags_in(lines) - allowed):
            problems.append("%s man page's %s mentions %s, which --help does not have"
                            % (binary, name, f))
    return problems


ABUSE_METRIC = "product_abusive_connections_closed_total"
ABUSE_SECTION = "CONNECTION LIMITS AND OVERLOAD"
ABUSE_SERIES_RE = re.compile(r'^' + ABUSE_METRIC + r'\{reason="([^"]*)"\} ', re.M)


def page_abuse_reasons(page_text):
    """The entries of the list that follows the first mention of the metric
    in CONNECTION LIMITS AND OVERLOAD, up to the next paragraph."""
    lines = sections(page_text).get(ABUSE_SECTION)
    if lines is None:
        raise AssertionError("no %s section" % ABUSE_SECTION)
    at = [i for i, l in enumerate(lines) if ABUSE_METRIC in macro_text(l)]
    if not at:
        raise AssertionError("%s does not name %s" % (ABUSE_SECTION, ABUSE_METRIC))
    end = next((i for i in range(at[0], len(lines)) if re.match(r"\.(PP|SH|SS)\b", lines[i])),
               len(lines))
    return tags(lines[at[0]:end])


def served_abuse_reasons():
    """The reason labels the server's /metrics pre-creates (every reason of
    the code's table has a series at 0 from the start)."""
    with h.Server("--metrics-listen", "127.0.0.1:0") as srv:
        port = srv.wait_log(lambda l: "metrics_port" in l)["metrics_port"]
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                    timeout=10 * h.SLOW) as resp:
            body = resp.read().decode()
    return ABUSE_SERIES_RE.findall(body)


def abuse_differences(page_reasons, served):
    problems = []
    for r in sorted(set(served) - set(page_reasons)):
        problems.append("the server closes connections for %s; the man page does not list it" % r)
    for r in sorted(set(page_reasons) - set(served)):
        problems.append("the man page lists %s; the server has no such reason" % r)
    dups = sorted({r for r in page_reasons if page_reasons.count(r) > 1})
    if dups:
        problems.append("the man page lists %s more than once" % ", ".join(dups))
    return problems


# ------------------------------------------------------------------ tests ---

S = {}


def setup():
    S["help"] = {b: help_text(b) for b in PAGES}
    S["page"] = {}
    for b, name in PAGES.items():
        with open(os.path.join(MAN_DIR, name), encoding="utf-8") as f:
            S["page"][b] = f.read()
    S["all_flags"] = set()
    for text in S["help"].values():
        S["all_flags"] |= help_flags(text)


def test_the_help_texts_are_read():
    # Anchors, so that a parser that reads nothing cannot pass.
    want = {
        "product-server": ({"--listen", "--store", "--insecure", "--help"},
                           {"LISTEN_ADDR", "JWT_SECRET", "INSECURE", "PORT"}),
        "mint-token": ({"--sub", "--secret-file", "--help"}, {"JWT_SECRET_FILE", "JWT_SECRET"}),
        "product-client": ({"--addr", "--filter", "--mask", "--help"},
                           {"PRODUCT_ADDR", "PRODUCT_TOKEN"}),
    }
    for b, (flags, envs) in want.items():
        text = S["help"][b]
        missing = (flags - help_flags(text)) | (envs - help_envs(text))
        if missing:
            raise AssertionError("%s --help: cannot find %s in %r" % (b, sorted(missing), text))
        secs = sections(S["page"][b])
        if not flags <= page_flags_in_options(secs) or not envs <= page_envs(secs):
            raise AssertionError("%s man page: cannot read its OPTIONS or ENVIRONMENT" % b)


def test_help_and_man_pages_agree():
    problems = []
    for b in PAGES:
        problems += differences(b, S["help"][b], S["page"][b], S["all_flags"])
    if problems:
        raise AssertionError("\n  ".join(["--help and docs/man disagree:"] + problems))


def test_a_flag_or_variable_on_one_side_only_is_noticed():
    b = "product-server"
    help_out, page = S["help"][b], S["page"][b]
    extra_help = help_out + "  --frobnicate N                 fake\n"
    extra_help_env = help_out + "                                 env FROB_LEVEL\n"
    extra_page = page.replace(".SH ENVIRONMENT",
                              ".TP\n.BI \\-\\-frobnicate \" N\"\nFake.\n.SH ENVIRONMENT", 1)
    extra_page_env = page.replace(".SH AUTHENTICATION",
                                  ".TP\n.B FROB_LEVEL\nFake.\n.SH AUTHENTICATION", 1)
    extra_prose = page.replace(".SH SIGNALS", ".SH SIGNALS\nSee \\fB\\-\\-frobnicate\\fR.", 1)
    # One entry dropped from OPTIONS: the .TP and tag of --store.
    dropped = re.sub(r"\.TP\n\.BI \\-\\-store [^\n]*\n", "", page, count=1)
    cases = [
        ("--help only", extra_help, page, "--frobnicate"),
        ("page only", help_out, extra_page, "--frobnicate"),
        ("help env only", extra_help_env, page, "FROB_LEVEL"),
        ("page env only", help_out, extra_page_env, "FROB_LEVEL"),
        ("page prose only", help_out, extra_prose, "--frobnicate"),
        ("page entry dropped", help_out, dropped, "--store"),
    ]
    for what, hx, px, needle in cases:
        expect_eq(px != page or hx != help_out, True, "%s: the mutation applied" % what)
        got = differences(b, hx, px, S["all_flags"])
        if not any(needle in p for p in got):
            raise AssertionError("%s: %s not reported (got %r)" % (what, needle, got))


def test_abuse_reasons_in_the_man_page_are_the_codes():
    served = served_abuse_reasons()
    # Anchors, so that a parser that reads nothing cannot pass.
    for r in ("rapid_reset", "ping_flood", "zero_window"):
        if r not in served:
            raise AssertionError("cannot find reason %s in /metrics: %r" % (r, served))
    page = S["page"]["product-server"]
    problems = abuse_differences(page_abuse_reasons(page), served)
    if problems:
        raise AssertionError("\n  ".join(["the abuse reasons disagree:"] + problems))
    # One reason dropped from the page, one added: both are noticed.
    dropped = page.replace(".TP\n.B zero_window\n", "", 1)
    added = page.replace(".TP\n.B rapid_reset\n", ".TP\n.B slow_loris\nFake.\n.TP\n.B rapid_reset\n", 1)
    for what, px, needle in (("dropped", dropped, "zero_window"), ("added", added, "slow_loris")):
        expect_eq(px != page, True, "reason %s: the mutation applied" % what)
        got = abuse_differences(page_abuse_reasons(px), served)
        if not any(needle in p for p in got):
            raise AssertionError("reason %s: %s not reported (got %r)" % (what, needle, got))


def test_pages_render_without_warnings():
    groff = shutil.which("groff")
    if not groff:
        raise AssertionError("groff is missing (tools/install-deps.sh installs groff-base)")
    for name in PAGES.values():
        path = os.path.join(MAN_DIR, name)
        p = subprocess.run([groff, "-t", "-man", "-ww", "-z", path], capture_output=True,
                           text=True, timeout=60)
        expect_eq((p.returncode, p.stderr), (0, ""), "groff -t -man -ww -z %s" % name)
        p = subprocess.run([groff, "-t", "-man", "-Tutf8", "-rLL=80n", path],
                           capture_output=True, text=True, timeout=60)
        expect_eq(p.returncode, 0, "groff -Tutf8 %s" % name)
        if "table wider than line width" in p.stderr or p.stderr:
            raise AssertionError("%s renders with warnings: %s" % (name, p.stderr))
        title = re.sub(r"\x08.", "", p.stdout)
        if "NAME" not in title or "OPTIONS" not in title:
            raise AssertionError("%s renders without NAME or OPTIONS" % name)


if __name__ == "__main__":
    setup()
    h.main([
        test_the_help_texts_are_read,
        test_help_and_man_pages_agree,
        test_a_flag_or_variable_on_one_side_only_is_noticed,
        test_abuse_reasons_in_the_man_page_are_the_codes,
        test_pages_render_without_warnings,
    ])
