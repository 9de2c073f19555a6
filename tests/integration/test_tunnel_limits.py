#!/usr/bin/python3
"""Limits: the connection cap derived from RLIMIT_NOFILE pauses accepting
and resumes; running out of descriptors pauses accepting, logs once, does
not spin, and recovers; a misbehaving client does not slow the others."""
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mtlib  # noqa: E402
from mtlib import Mailtunnel, expect_equal, fail, tlsserver  # noqa: E402


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ping(s, data=b"ping\n", timeout=10):
    s.settimeout(timeout)
    s.sendall(data)
    return s.recv(100)


def conf(pki, port, backend, extra=""):
    return (f"workers = 1\n{extra}\n[echo]\nclient = yes\n"
            f"accept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{backend}\n"
            f"CAfile = {pki.ca}\ncheckHost = mail.test\n")


def main(t):
    pki = t.pki()
    echo = tlsserver.echo_server(t, pki.leaf("good"))

    with t.case("the connection cap comes from RLIMIT_NOFILE: 256 -> 96"):
        port = t.port()
        mt = Mailtunnel(t, conf(pki, port, echo.port),
                        program=["prlimit", "--nofile=256:256",
                                 mtlib.daemon.binary()]).start(
            wait_ports=[port])
        mt.wait_for_log(r"up to 96 connections")
        conns = [socket.create_connection(("127.0.0.1", port))
                 for _ in range(100)]
        for s in conns[:96]:
            expect_equal("echo", ping(s), b"ping\n")
        mt.wait_for_log(r"connection limit reached \(96 open\); not "
                        r"accepting until one closes")
        extra = conns[96]
        extra.settimeout(1)
        extra.sendall(b"wait\n")
        try:
            extra.recv(10)
            fail("served past the cap")
        except socket.timeout:
            pass
        for s in conns[:10]:
            s.close()
        expect_equal("served after others closed", ping(extra, b""),
                     b"wait\n")
        mt.wait_for_log(r"accepting clients again")
        for s in conns[10:]:
            s.close()
        expect_equal("exit", mt.stop(), 0)

    with t.case("out of descriptors: pause, log once, no spinning, "
                "recover"):
        port = t.port()
        mt = Mailtunnel(t, conf(pki, port, echo.port), name="emfile").start(
            wait_ports=[port])
        open_fds = len(os.listdir(f"/proc/{mt.pid}/fd"))
        soft = subprocess.run(["prlimit", f"--pid={mt.pid}", "--nofile",
                               "--output=SOFT", "--noheadings"],
                              capture_output=True, text=True,
                              check=True).stdout.strip()
        subprocess.run(["prlimit", f"--pid={mt.pid}",
                        f"--nofile={open_fds + 6}:"], check=True)
        conns = []
        for _ in range(10):
            s = socket.create_connection(("127.0.0.1", port))
            conns.append(s)
        time.sleep(1)
        before = cpu_seconds(mt.pid)
        time.sleep(2)
        spent = cpu_seconds(mt.pid) - before
        if spent > 0.3:
            fail(f"the daemon used {spent:.2f}s of CPU in 2s while out "
                 f"of descriptors (spinning?)")
        lines = [ln for ln in mt.log_text().splitlines()
                 if "cannot accept clients: Too many open files" in ln]
        if len(lines) != 1:
            fail(f"{len(lines)} EMFILE lines, want 1:\n" + "\n".join(lines))
        subprocess.run(["prlimit", f"--pid={mt.pid}", f"--nofile={soft}:"],
                       check=True)
        for s in conns:
            expect_equal("served once descriptors are back", ping(s),
                         b"ping\n")
            s.close()
        expect_equal("exit", mt.stop(), 0)

    with t.case("a client that never reads does not slow the others"):
        port = t.port()
        big = tlsserver.source_server(t, pki.leaf("good"), 64 << 20)
        bigport = t.port()
        mt = Mailtunnel(t, conf(pki, port, echo.port) + f"""
[big]
client = yes
accept = 127.0.0.1:{bigport}
connect = 127.0.0.1:{big.port}
""", name="fair").start(wait_ports=[port, bigport])
        stuck = socket.create_connection(("127.0.0.1", bigport))
        time.sleep(0.5)
        start = time.monotonic()
        for _ in range(50):
            with socket.create_connection(("127.0.0.1", port)) as s:
                expect_equal("echo", ping(s), b"ping\n")
        took = time.monotonic() - start
        stuck.close()
        if took > 5:
            fail(f"50 echo sessions took {took:.1f}s next to a stuck reader")
        expect_equal("exit", mt.stop(), 0)


mtlib.run(main)
