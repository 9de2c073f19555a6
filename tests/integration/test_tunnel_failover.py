#!/usr/bin/python3
"""Reaching the server: failover across connect lines, round robin,
retry, names that do not resolve, addresses that do not answer, IPv6,
and a client that is told nothing when no server is reachable."""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mtlib  # noqa: E402
from mtlib import Mailtunnel, expect_equal, fail, tlsserver  # noqa: E402


def talk(port, host="127.0.0.1", data=b"ping\n"):
    with socket.create_connection((host, port), timeout=15) as s:
        s.sendall(data)
        out = b""
        while not out.endswith(b"\n"):
            chunk = s.recv(100)
            if not chunk:
                break
            out += chunk
        return out


def main(t):
    pki = t.pki()
    good = pki.leaf("good")
    e1 = tlsserver.echo_server(t, good)
    e2 = tlsserver.echo_server(t, good)
    e6 = tlsserver.echo_server(t, good, host="::1")
    closed = t.port()              # nothing listens there
    late = t.port()                # a server that starts after a while
    p = {n: t.port() for n in ("fo", "rr", "retry", "dead", "dns", "hole")}
    p6 = t.port6()
    conf = f"""client = yes
CAfile = {pki.ca}
checkHost = mail.test
debug = info

[fo]
accept = 127.0.0.1:{p['fo']}
connect = 127.0.0.1:{closed}
connect = 127.0.0.1:{e1.port}

[rr]
accept = 127.0.0.1:{p['rr']}
connect = 127.0.0.1:{e1.port}
connect = 127.0.0.1:{e2.port}
failover = rr

[retry]
accept = 127.0.0.1:{p['retry']}
connect = 127.0.0.1:{late}
retry = 200
TIMEOUTconnect = 8

[dead]
accept = 127.0.0.1:{p['dead']}
connect = 127.0.0.1:{closed}
connect = 127.0.0.1:{closed}

[dns]
accept = 127.0.0.1:{p['dns']}
connect = no-such-host.invalid:995
connect = localhost:{e1.port}
TIMEOUTconnect = 2

[hole]
accept = 127.0.0.1:{p['hole']}
connect = 192.0.2.1:995
connect = 127.0.0.1:{e2.port}
TIMEOUTconnect = 1

[v6]
accept = [::1]:{p6}
connect = [::1]:{e6.port}
"""
    mt = Mailtunnel(t, conf).start(wait_ports=list(p.values()))

    with t.case("a refused first target fails over to the second"):
        expect_equal("echo", talk(p["fo"]), b"ping\n")
        mt.wait_for_log(rf"\[fo\] .*cannot connect to 127\.0\.0\.1:{closed} "
                        r".*Connection refused")

    with t.case("failover = rr spreads clients over the targets"):
        before1, before2 = len(e1.conns), len(e2.conns)
        for _ in range(4):
            talk(p["rr"])
        got = (len(e1.conns) - before1, len(e2.conns) - before2)
        if got[0] < 1 or got[1] < 1:
            fail(f"connections per target: {got}")

    with t.case("retry: the server comes up a second later, the client "
                "still gets through"):
        def start_late():
            time.sleep(1.0)
            tlsserver.echo_server(t, good, port=late)
        threading.Thread(target=start_late, daemon=True).start()
        expect_equal("echo", talk(p["retry"]), b"ping\n")
        mt.wait_for_log(r"\[retry\] .*no server reachable; retrying in "
                        r"200 ms")

    with t.case("no server reachable: the client is closed, one error line"):
        expect_equal("client receives", talk(p["dead"]), b"")
        mt.wait_for_log(r"err: \[dead\] .*no server reachable \(2 connect "
                        r"targets tried\); closing the client")

    with t.case("a name that does not resolve: the next target is used"):
        expect_equal("echo", talk(p["dns"]), b"ping\n")
        mt.wait_for_log(r"\[dns\] .*(cannot resolve no-such-host\.invalid|"
                        r"resolving no-such-host\.invalid timed out)")

    with t.case("an address that never answers: TIMEOUTconnect, then the "
                "next"):
        start = time.monotonic()
        expect_equal("echo", talk(p["hole"]), b"ping\n")
        if time.monotonic() - start > 5:
            fail("took too long")
        mt.wait_for_log(r"\[hole\] .*(connecting to 192\.0\.2\.1:995 .*timed "
                        r"out after 1s|cannot connect to 192\.0\.2\.1:995)")

    with t.case("IPv6 on both sides"):
        expect_equal("echo", talk(p6, host="::1"), b"ping\n")

    expect_equal("exit", mt.stop(), 0)


mtlib.run(main)
