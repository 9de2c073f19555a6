"""Scripted (possibly hostile) servers for STARTTLS and protocol tests.

A script is a list of steps run in order on each connection:

    from mtlib.script import *
    srv = ScriptedServer(t, [
        send(b"+OK hi\\r\\n"),
        expect_line(b"STLS"),
        send(b"+OK go\\r\\n+OK extra\\r\\n"),     # one write: injected reply
        start_tls(pki.leaf("good")),
        send(b"+OK\\r\\n"),
        record_all(),
    ])
    ... run the client against srv.port ...
    c = srv.conn(0)
    assert b"PASS" not in c.plain_in

expect_line(pattern): bytes = the line (without CR LF) must start with
pattern, case-insensitively; a compiled regex (re.compile(rb"...")) must
match the line with search(). A mismatch, or EOF, ends the script with
Conn.error set (Server.check() turns it into a test failure) unless the
step is given fatal=False. A failed start_tls ends the script quietly with
Conn.tls_error set: tests of bad certificates look at that.
"""
import re
import time

from .tlsserver import ScriptFailed, Server

__all__ = ["ScriptedServer", "send", "expect_line", "read_line", "start_tls",
           "record_all", "expect_eof", "close", "close_notify",
           "shutdown_write", "abort", "sleep", "call", "respond_until"]


class Step:
    def __init__(self, name, fn, *args):
        self.name = name
        self.fn = fn
        self.args = args

    def __call__(self, conn):
        return self.fn(conn, *self.args)

    def __repr__(self):
        return f"{self.name}({', '.join(repr(a) for a in self.args)})"


class _End(Exception):
    """Stop the script here (the step closed the connection)."""


def _matches(pattern, line):
    body = line.rstrip(b"\r\n")
    if isinstance(pattern, re.Pattern):
        return pattern.search(body) is not None
    if isinstance(pattern, str):
        pattern = pattern.encode()
    return body.upper().startswith(pattern.upper())


def send(data):
    """Send data in a single write."""
    return Step("send", lambda c, d: c.send(d), data)


def _expect(conn, pattern, fatal):
    line = conn.read_line()
    conn.lines.append(line)
    if not line:
        raise ScriptFailed(f"expected a line matching {pattern!r}, got EOF "
                           f"({conn.eof})")
    if not _matches(pattern, line):
        if fatal:
            raise ScriptFailed(f"expected a line matching {pattern!r}, got "
                               f"{line!r}")
    return line


def expect_line(pattern, fatal=True):
    """Read one line and check it against pattern (see module doc)."""
    return Step("expect_line", _expect, pattern, fatal)


def read_line():
    """Read one line, whatever it is (it is recorded)."""
    return Step("read_line", lambda c: c.read_line())


def _start_tls(conn, cert, options):
    from .tlsserver import HandshakeFailed
    try:
        conn.start_tls(cert, **options)
    except HandshakeFailed:
        raise _End() from None


def start_tls(cert, **ctx_options):
    """Switch to TLS now with cert (see tlsserver.server_context)."""
    return Step("start_tls", _start_tls, cert, ctx_options)


def record_all():
    """Read (and record) everything until the client closes."""
    return Step("record_all", lambda c: c.read_until_eof())


def _expect_eof(conn, timeout):
    old = conn.sock.gettimeout()
    conn.sock.settimeout(timeout)
    try:
        rest = conn.read_until_eof()
    finally:
        conn.sock.settimeout(old)
    if rest:
        raise ScriptFailed(f"expected the client to close, got {rest[:200]!r}")


def expect_eof(timeout=10.0):
    """The client must close without sending anything more."""
    return Step("expect_eof", _expect_eof, timeout)


def _close(conn):
    conn.close()
    raise _End()


def close():
    """Close the TCP connection (no close_notify) and end the script."""
    return Step("close", _close)


def close_notify():
    """Send a TLS close_notify (the connection stays open)."""
    return Step("close_notify", lambda c: c.close_notify())


def shutdown_write():
    """Half-close the TCP connection (FIN); reading goes on."""
    return Step("shutdown_write", lambda c: c.shutdown_write())


def _abort(conn):
    conn.abort()
    raise _End()


def abort():
    """Reset the connection (RST) and end the script."""
    return Step("abort", _abort)


def sleep(seconds):
    return Step("sleep", lambda c, s: time.sleep(s), seconds)


def call(fn):
    """Run fn(conn) as a step: the escape hatch for anything else."""
    return Step(getattr(fn, "__name__", "call"), fn)


def _respond_until(conn, replies, stop):
    while True:
        line = conn.read_line()
        if not line:
            return
        conn.lines.append(line)
        for pattern, reply in replies:
            if _matches(pattern, line):
                conn.send(reply(line) if callable(reply) else reply)
                break
        else:
            raise ScriptFailed(f"no scripted reply for {line!r}")
        if stop is not None and _matches(stop, line):
            return


def respond_until(replies, stop=None):
    """Answer lines from a table until a line matches stop (or EOF).

    replies: [(pattern, reply bytes or fn(line) -> bytes)], first match
    wins; a line that matches nothing fails the script. The stop line is
    answered too before the step ends.
    """
    return Step("respond_until", _respond_until, list(replies), stop)


def _run_steps(steps):
    def handler(conn):
        conn.lines = []
        for i, step in enumerate(steps):
            conn.step = i
            try:
                step(conn)
            except _End:
                return
            except ScriptFailed as e:
                raise ScriptFailed(f"step {i} {step!r}: {e}") from None
        conn.step = len(steps)
    return handler


class ScriptedServer(Server):
    """A plaintext server that runs the same steps on every connection.

    steps: a list of steps, or a function index -> steps to script each
    connection differently (retries, second attempts). Each Conn also gets
    .lines (the lines the script read) and .step (where it stopped).
    """

    def __init__(self, env, steps, host="127.0.0.1", port=0, max_conns=None,
                 timeout=10.0):
        self.steps = steps

        def handler(conn):
            chosen = steps(conn.index) if callable(steps) else steps
            _run_steps(chosen)(conn)

        super().__init__(env, handler, None, host=host, port=port,
                         max_conns=max_conns, timeout=timeout)
