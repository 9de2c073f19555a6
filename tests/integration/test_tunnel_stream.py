#!/usr/bin/python3
"""The data path: integrity both ways, bounded memory with a slow reader,
half-close in both directions, timeouts, early client data."""
import hashlib
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mtlib  # noqa: E402
from mtlib import (Mailtunnel, expect_equal, fail, pattern_bytes,  # noqa: E402
                   tlsserver, wait_until)

MB = 1 << 20


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=20)


def read_all(s):
    out = bytearray()
    while True:
        chunk = s.recv(1 << 16)
        if not chunk:
            return bytes(out)
        out += chunk


def main(t):
    pki = t.pki()
    good = pki.leaf("good")
    big = 32 * MB
    source = tlsserver.source_server(t, good, big)
    source_dirty = tlsserver.source_server(t, good, 100000,
                                           close_notify=False)
    sink = tlsserver.sink_server(t, good)
    half = tlsserver.halfclose_server(t, good)
    echo = tlsserver.echo_server(t, good)
    names = ["source", "dirty", "sink", "half", "echo", "idle", "busy"]
    ports = {n: t.port() for n in names}
    backends = {"source": source, "dirty": source_dirty, "sink": sink,
                "half": half, "echo": echo, "idle": echo, "busy": source}
    extra = {"idle": "TIMEOUTidle = 2", "busy": "TIMEOUTbusy = 2"}
    conf = f"client = yes\nCAfile = {pki.ca}\ncheckHost = mail.test\n"
    for n in names:
        conf += (f"\n[{n}]\naccept = 127.0.0.1:{ports[n]}\n"
                 f"connect = 127.0.0.1:{backends[n].port}\n{extra.get(n, '')}\n")
    # Under ASan, freed memory waits in a quarantine (256 MB by default)
    # and would look like growth: keep it small so RSS means something.
    asan = os.environ.get("ASAN_OPTIONS", "")
    mt = Mailtunnel(t, "debug = info\n" + conf, env_vars={
        "ASAN_OPTIONS": (asan + ":" if asan else "") +
        "quarantine_size_mb=1"}).start(wait_ports=list(ports.values()))

    with t.case("download 32 MiB: every byte, in order, then EOF"):
        with connect(ports["source"]) as s:
            data = read_all(s)
        expect_equal("length", len(data), big)
        if data != pattern_bytes(big):
            fail("content differs")

    with t.case("server EOF without close_notify: data flushed, then EOF"):
        with connect(ports["dirty"]) as s:
            expect_equal("bytes", read_all(s), pattern_bytes(100000))

    with t.case("upload 16 MiB: the server sees every byte"):
        payload = os.urandom(16 * MB)
        with connect(ports["sink"]) as s:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            read_all(s)
        c = sink.conn(0, timeout=20)
        expect_equal("bytes", c.bytes_in, len(payload))
        expect_equal("sha256", c.sha256_in.hexdigest(),
                     hashlib.sha256(payload).hexdigest())

    with t.case("client half-close is forwarded; the reply still arrives"):
        with connect(ports["half"]) as s:
            s.sendall(b"x" * 1000)
            s.shutdown(socket.SHUT_WR)
            expect_equal("reply", read_all(s), b"got 1000 bytes\n")
        c = half.conn(0)
        expect_equal("server saw", c.eof, "close_notify")

    with t.case("data sent before the server is connected is delivered"):
        with connect(ports["echo"]) as s:
            s.sendall(b"early bird\n")
            expect_equal("echo", s.recv(100), b"early bird\n")

    with t.case("slow reader: the tunnel's memory stays bounded"):
        slow_port = ports["source"]
        before = mt.rss_kib()
        conns = [connect(slow_port) for _ in range(4)]
        time.sleep(3)           # the server pushes; nobody reads
        grown = mt.rss_kib() - before
        for s in conns:
            s.close()
        # four tunnels, each capped at 256 KiB per direction plus one read
        if grown > 4 * 1024 + 2048:
            fail(f"RSS grew by {grown} KiB while 4 clients did not read")

    with t.case("TIMEOUTidle: a silent connection is closed"):
        with connect(ports["idle"]) as s:
            start = time.monotonic()
            expect_equal("read", read_all(s), b"")
            took = time.monotonic() - start
        if not 1.5 <= took <= 6:
            fail(f"closed after {took:.1f}s, want about 2s")
        mt.wait_for_log(r"\[idle\] .*idle for 2s \(TIMEOUTidle\)")

    with t.case("TIMEOUTbusy: a client that never reads is dropped"):
        with connect(ports["busy"]) as s:
            time.sleep(4)
            mt.wait_for_log(r"\[busy\] .*accepted no data for 2s "
                            r"\(TIMEOUTbusy\)", timeout=10)

    with t.case("a client reset is logged at info, not as an error"):
        s = connect(ports["echo"])
        s.sendall(b"hello\n")
        s.recv(10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
        mt.wait_for_log(r"info: \[echo\] .*(client connection lost|closed)")
        if "err: [echo]" in mt.log_text():
            fail("client reset logged as an error")

    with t.case("no tunnel left open"):
        wait_until(lambda: "closed after" in mt.log_text(), 5, "closes")

    expect_equal("exit code", mt.stop(), 0)


mtlib.run(main)
