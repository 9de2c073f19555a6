#!/usr/bin/python3
"""Every refused certificate is refused, the client gets nothing, and the
log says why in words, once, with the service and the server named."""
import os
import socket
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mtlib  # noqa: E402
from mtlib import Mailtunnel, expect_equal, fail, tlsserver  # noqa: E402

# variant -> what the log must say
REFUSED = {
    "expired": r"certificate expired on \d{4}-\d\d-\d\d",
    "not_yet_valid": r"certificate not yet valid until \d{4}-\d\d-\d\d",
    "wrong_host": r"host name mismatch",
    "self_signed": r"self-signed certificate",
    "unknown_ca": r"unknown CA",
    "missing_intermediate": r"incomplete chain",
    "rsa1024": r"key too weak: RSA 1024 bits",
    "sha1": r"signature algorithm too weak: SHA-1",
    "dns_only": r"IP address mismatch",
    "client_auth_only": r"not valid for a TLS server",
}


def talk(port, data=b"ping\n"):
    """Send a line, return what comes back before the tunnel closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return out
            out += chunk
            if out.endswith(b"\n"):
                return out


def main(t):
    pki = t.pki()
    sections, ports, servers = [], {}, {}
    for variant in list(REFUSED) + ["good"]:
        srv = servers[variant] = tlsserver.echo_server(t, pki.leaf(variant))
        ports[variant] = t.port()
        # dns_only is reached by address, so the IP check applies.
        check = "" if variant == "dns_only" else "checkHost = mail.test"
        sections.append(f"""
[{variant}]
accept = 127.0.0.1:{ports[variant]}
connect = 127.0.0.1:{srv.port}
{check}""")
    selfsigned = tlsserver.echo_server(t, pki.leaf("self_signed"))
    old = tlsserver.echo_server(t, pki.leaf("good"),
                                max_version=ssl.TLSVersion.TLSv1_1,
                                min_version=ssl.TLSVersion.TLSv1)
    plain = tlsserver.Server(t, lambda c: c.send(b"+OK plaintext POP3\r\n"))
    ports.update(noverify=t.port(), old=t.port(), plain=t.port(),
                 pinned=t.port(), byip=t.port())
    good_srv = tlsserver.echo_server(t, pki.leaf("good"))
    mt = Mailtunnel(t, f"""
client = yes
CAfile = {pki.ca}
{''.join(sections)}

[noverify]
accept = 127.0.0.1:{ports['noverify']}
connect = 127.0.0.1:{selfsigned.port}
verifyChain = no

[old]
accept = 127.0.0.1:{ports['old']}
connect = 127.0.0.1:{old.port}
checkHost = mail.test

[plain]
accept = 127.0.0.1:{ports['plain']}
connect = 127.0.0.1:{plain.port}

[pinned]
accept = 127.0.0.1:{ports['pinned']}
connect = 127.0.0.1:{good_srv.port}
checkHost = mail.test
verifyPeer = yes

[byip]
accept = 127.0.0.1:{ports['byip']}
connect = 127.0.0.1:{good_srv.port}
""").start(wait_ports=list(ports.values()))

    with t.case("verifyChain = no is warned about at start"):
        mt.wait_for_log(r"verification is OFF .*noverify|noverify.*"
                        r"verification is OFF")

    for variant, reason in REFUSED.items():
        with t.case(f"{variant}: refused, client gets nothing, reason logged"):
            expect_equal("client receives", talk(ports[variant]), b"")
            m = mt.wait_for_log(rf"\[{variant}\] #\d+ 127\.0\.0\.1:\d+: TLS "
                                rf"handshake with 127\.0\.0\.1:\d+ \[[^]]+\] "
                                rf"failed: .*{reason}")
            count = len([ln for ln in mt.log_text().splitlines()
                         if f"[{variant}]" in ln and "handshake" in ln])
            expect_equal("handshake failure lines", count, 1)
            del m

    with t.case("good certificate: data flows both ways"):
        expect_equal("echo", talk(ports["good"]), b"ping\n")

    with t.case("good certificate reached by IP: the IP is checked"):
        expect_equal("echo", talk(ports["byip"]), b"ping\n")

    with t.case("verifyChain = no: a self-signed server is accepted"):
        expect_equal("echo", talk(ports["noverify"]), b"ping\n")

    with t.case("a TLS 1.1 server is refused for its version"):
        expect_equal("client receives", talk(ports["old"]), b"")
        mt.wait_for_log(r"\[old\] .*failed: .*protocol version")

    with t.case("a plaintext server is refused, nothing leaks"):
        expect_equal("client receives", talk(ports["plain"]), b"")
        mt.wait_for_log(r"\[plain\] .*failed: .*plaintext")

    with t.case("verifyPeer: a chain-valid but unpinned certificate fails"):
        expect_equal("client receives", talk(ports["pinned"]), b"")
        mt.wait_for_log(r"\[pinned\] .*failed: .*not pinned")

    with t.case("no refused server ever got the client's data"):
        for variant in REFUSED:
            for c in servers[variant].conns:
                if c.received:
                    fail(f"{variant}: server received {c.received!r}")

    expect_equal("exit code", mt.stop(), 0)


mtlib.run(main)
