"""Helpers shared by the fetch tests (test_fetch*.py): running
"mailtunnel fetch", reading what it delivered, awkward test messages.

    from fetchlib import Fetch, maildir_messages, awkward_messages
    f = Fetch(t, pki, dc)                  # password file, state, CA
    r = f.run("imaps", "maildir:" + md)    # CompletedProcess, text output
"""
import mailbox
import os
import re
import subprocess
import sys

import mtlib
from mtlib import daemon, fail

MSGID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]*>)", re.I | re.M)


def binary():
    return daemon.binary()


class Fetch:
    """Runs the fetcher against one account with fixed secrets and state."""

    def __init__(self, t, pki, server, state=None, user=None, password=None):
        self.t = t
        self.pki = pki
        self.server = server
        self.user = user or server.user
        self.password_file = t.unique_path("password")
        with open(self.password_file, "w") as fh:
            fh.write((password or server.password) + "\n")
        os.chmod(self.password_file, 0o600)
        self.state = state or t.mkdir(os.path.basename(
            t.unique_path("state")))

    def url(self, scheme, port=None, mailbox=""):
        host = getattr(self.server, "host", "127.0.0.1")
        port = port or self.server.ports[scheme]
        user = self.user.replace("@", "%40")
        return f"{scheme}://{user}@{host}:{port}" + (f"/{mailbox}" if mailbox
                                                     else "")

    def argv(self, url, target, *extra, secret=True, ca=True, state=True):
        argv = [binary(), "fetch", url, "--deliver", target]
        if secret:
            argv += ["--password-file", self.password_file]
        if ca:
            argv += ["--ca-file", self.pki.ca]
        if state:
            argv += ["--state", self.state]
        return argv + list(extra)

    def run(self, scheme, target, *extra, timeout=120, url=None, **kw):
        """One run; returns CompletedProcess with text stdout/stderr."""
        argv = self.argv(url or self.url(scheme), target, *extra, **kw)
        r = subprocess.run(argv, capture_output=True, timeout=timeout)
        r.stdout = r.stdout.decode(errors="replace")
        r.stderr = r.stderr.decode(errors="replace")
        return r

    def spawn(self, scheme, target, *extra, name=None, url=None, **kw):
        return self.t.spawn(self.argv(url or self.url(scheme), target, *extra,
                                      **kw), name=name)


def expect_rc(r, want, what="fetch"):
    if r.returncode != want:
        fail(f"{what}: exit {r.returncode}, expected {want}; output:\n"
             f"{r.stderr[-3000:]}")


def summary(r):
    """Numbers of the summary line: delivered, new, listed."""
    m = re.search(r"(\d+) messages? delivered \(.*?\) in [\d.]+ s, (\d+) new "
                  r"of (\d+) on the server", r.stderr)
    if m is None:
        fail(f"no summary line in:\n{r.stderr[-2000:]}")
    return tuple(int(x) for x in m.groups())


def maildir_messages(path):
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(path, sub)
        if os.path.isdir(d):
            for name in sorted(os.listdir(d)):
                with open(os.path.join(d, name), "rb") as fh:
                    out.append(fh.read())
    return out


def dir_messages(path):
    out = []
    if os.path.isdir(path):
        for name in sorted(os.listdir(path)):
            if name.endswith(".eml") and not name.startswith("."):
                with open(os.path.join(path, name), "rb") as fh:
                    out.append(fh.read())
    return out


def mbox_messages(path):
    """Messages of an mboxrd file, unquoted, without our tracking header."""
    if not os.path.exists(path):
        return []
    with open(path, "rb") as fh:
        data = fh.read()
    msgs = re.split(rb"(?m)^From [^\n]*\n", data)[1:]
    out = []
    for m in msgs:
        m = re.sub(rb"(?m)^>(>*From )", rb"\1", m)
        m = re.sub(rb"(?m)^X-Mailtunnel-Id: [^\n]*\n", b"", m, count=1)
        out.append(m[:-1] if m.endswith(b"\n") else m)
    return out


def message_ids(msgs):
    ids = []
    for m in msgs:
        found = MSGID.search(m)
        ids.append(found.group(1) if found else None)
    return ids


def to_lf(raw):
    return raw.replace(b"\r\n", b"\n")


def to_crlf(raw):
    return re.sub(rb"(?<!\r)\n", b"\r\n", raw)


def awkward_messages():
    """(name, raw bytes): the messages that break naive fetchers."""
    def head(i, extra=b""):
        return (b"Message-ID: <awkward-%d@mail.test>\r\nFrom: a@b.test\r\n"
                b"Subject: awkward %d\r\n" % (i, i) + extra)
    dots = head(1) + (b"\r\n.\r\n..\r\n.leading dot\r\n...three\r\n. \r\n"
                      b"From the start of a line\r\n>From quoted\r\n"
                      b"end\r\n")
    bare_lf = (head(2).replace(b"\r\n", b"\n") + b"\nline one\nline two\n"
               b".dot line\nFrom here\n")
    eight_bit = head(3) + (b"Content-Type: text/plain; charset=utf-8\r\n"
                           b"Content-Transfer-Encoding: 8bit\r\n\r\n"
                           b"gr\xc3\xbc\xc3\x9fe \xe2\x82\xac \xff\xfe"
                           b"\x80 raw\r\n")
    no_newline = head(4) + b"\r\nthe last line has no line end"
    empty_body = head(5) + b"\r\n"
    return [("dots", dots), ("bare_lf", bare_lf), ("8bit", eight_bit),
            ("no_newline", no_newline), ("empty_body", empty_body)]


def big_message(i, size):
    """A message of about size bytes (CRLF), unique Message-ID."""
    return mtlib.make_message(i, size)


def peak_rss_kib(argv, timeout=300):
    """Run argv in a fresh process whose only child it is: (rc, peak RSS
    in KiB of the child, stderr text)."""
    code = ("import resource, subprocess, sys\n"
            "r = subprocess.run(sys.argv[1:], stderr=subprocess.PIPE)\n"
            "sys.stdout.write('%d %d\\n' % (r.returncode, resource.getrusage("
            "resource.RUSAGE_CHILDREN).ru_maxrss))\n"
            "sys.stdout.flush()\n"
            "sys.stderr.buffer.write(r.stderr)\n")
    # Under AddressSanitizer freed memory sits in a quarantine that would
    # count as growth; keep it small (no effect on a normal build).
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = ":".join(filter(None, [
        env.get("ASAN_OPTIONS", ""), "quarantine_size_mb=1",
        "thread_local_quarantine_size_kb=64"]))
    p = subprocess.run(["/usr/bin/python3", "-c", code] + list(argv),
                       capture_output=True, timeout=timeout, env=env)
    rc, rss = p.stdout.split()
    return int(rc), int(rss), p.stderr.decode(errors="replace")
