#!/usr/bin/python3
"""OCSPaia, OCSP = URL, OCSPrequire, OCSPnonce and TIMEOUTocsp against a
real `openssl ocsp` responder: a good certificate passes, a revoked one is
refused with the reason, a dead or silent responder refuses unless
OCSPrequire = no, a certificate that names no responder passes."""
import os
import signal
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mtlib  # noqa: E402
from mtlib import (Mailtunnel, expect_equal, fail, tlsserver,  # noqa: E402
                   wait_closed)

ADDR = r"127\.0\.0\.1:\d+ \[127\.0\.0\.1:\d+\]"


def talk(port, data=b"ping\n"):
    """Send a line; what comes back before the line ends or the tunnel
    closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        s.sendall(data)
        out = b""
        while not out.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
        return out


def silent_server(t):
    """Accepts and reads, never answers: a responder that hangs."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", t.port()))
    sock.listen(16)
    held = []

    def loop():
        while True:
            try:
                c, _ = sock.accept()
            except OSError:
                return
            held.append(c)
    threading.Thread(target=loop, daemon=True).start()

    def stop():
        sock.close()
        for c in held:
            c.close()
    t.on_cleanup(stop)
    return sock.getsockname()[1]


def main(t):
    pki = t.pki()
    rport, dead, silent = t.port(), t.port(), silent_server(t)
    url = f"http://127.0.0.1:{rport}/"
    good = pki.issue("ocsp_good", ocsp=url)
    revoked = pki.issue("ocsp_revoked", ocsp=url)
    nowhere = pki.issue("ocsp_dead", ocsp=f"http://127.0.0.1:{dead}/")
    hangs = pki.issue("ocsp_silent", ocsp=f"http://127.0.0.1:{silent}/")
    pki.revoke(revoked)
    responder = pki.ocsp_responder(t, rport)

    servers = {name: tlsserver.echo_server(t, cert) for name, cert in (
        ("good", good), ("revoked", revoked), ("dead", nowhere),
        ("silent", hangs), ("noaia", pki.leaf("good")))}
    services = {
        # name: (server, options)
        "aia": ("good", "OCSPaia = yes"),
        "nonce": ("good", "OCSPaia = yes\nOCSPnonce = yes"),
        "revoked": ("revoked", "OCSPaia = yes"),
        "dead": ("dead", "OCSPaia = yes"),
        "soft": ("dead", "OCSPaia = yes\nOCSPrequire = no"),
        "silent": ("silent", "OCSPaia = yes\nTIMEOUTocsp = 2"),
        "short": ("silent", "OCSPaia = yes\nTIMEOUTconnect = 1"),
        "noaia": ("noaia", "OCSPaia = yes"),
        "nochecks": ("noaia", f"OCSP = {url}\nOCSPflag = NOCHECKS\n"
                     "OCSPrequire = no"),
        # Only the leaf gets a valid answer here: not required.
        "url": ("noaia", f"OCSP = {url}\nOCSPrequire = no"),
        "off": ("revoked", ""),
    }
    ports = {name: t.port() for name in services}
    conf = f"debug = debug\nclient = yes\nCAfile = {pki.ca}\n" \
           "checkHost = mail.test\n"
    for name, (server, opts) in services.items():
        conf += (f"\n[{name}]\naccept = 127.0.0.1:{ports[name]}\n"
                 f"connect = 127.0.0.1:{servers[server].port}\n{opts}\n")
    mt = Mailtunnel(t, conf).start(wait_ports=list(ports.values()))

    def passes(name, log, since=0):
        expect_equal(name, talk(ports[name]), b"ping\n")
        mt.wait_for_log(r"\[" + name + r"\] #\d+ " + log, since=since)

    def refused(name, log, since=0):
        expect_equal(name, talk(ports[name]), b"")
        mt.wait_for_log(r"err: \[" + name + r"\] #\d+ 127\.0\.0\.1:\d+: "
                        r"TLS with " + ADDR + r" refused: " + log, since=since)

    with t.case("OCSPaia: a good certificate passes"):
        passes("aia", r".*OCSP check of " + ADDR + r": 1 certificate good")
        mt.wait_for_log(r"\[aia\] .*OCSP: .*CN=mail\.test: good: says "
                        + url)

    with t.case("OCSPnonce = yes: the responder's nonce is checked"):
        passes("nonce", r".*1 certificate good")

    with t.case("a revoked certificate is refused, with the reason"):
        refused("revoked", r"certificate revoked: .*CN=mail\.test: revoked "
                r"on \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(keyCompromise\), "
                r"says " + url)

    with t.case("a dead responder: refused (OCSPrequire = yes)"):
        refused("dead", r"no clear OCSP answer \(OCSPrequire = yes\): "
                r".*CN=mail\.test: no answer from http://127\.0\.0\.1:"
                + str(dead))

    with t.case("OCSPrequire = no: a dead responder is a warning"):
        passes("soft", r".*OCSP check of .*no answer from .*; going on "
               r"\(OCSPrequire = no\)")

    with t.case("a responder that hangs: TIMEOUTocsp"):
        refused("silent", r"no clear OCSP answer .*no answer from "
                r"http://127\.0\.0\.1:" + str(silent) + r"/ within 2s "
                r"\(TIMEOUTocsp\)")

    with t.case("TIMEOUTconnect ends a check still waiting"):
        expect_equal("short", talk(ports["short"]), b"")
        mt.wait_for_log(r"warning: \[short\] #\d+ .*OCSP check of " + ADDR +
                        r" timed out after 1s \(TIMEOUTconnect\)")

    with t.case("a client that leaves during the check"):
        mark = mt.log_mark()
        socket.create_connection(("127.0.0.1", ports["silent"]),
                                 timeout=5).close()
        mt.wait_for_log(r"\[silent\] #\d+ .*closed after", since=mark)
        passes("aia", r".*1 certificate good")

    with t.case("a certificate that names no responder passes"):
        passes("noaia", r".*OCSP check of " + ADDR + r": no certificate of "
               r"the chain names an OCSP responder")

    with t.case("OCSP = URL asks that responder for every certificate"):
        passes("url", r".*OCSP: .*CN=mail\.test: good: says " + url)
        # It signs as the intermediate, which cannot vouch for itself.
        mt.wait_for_log(r"\[url\] .*OCSP: .*CN=mtlib Test Intermediate CA: "
                        r"no clear answer: the response of " + url +
                        r" does not verify")

    with t.case("OCSPflag = NOCHECKS: the intermediate's answer is taken "
                "(a warning at start says what that gives up)"):
        mt.wait_for_log(r"warning: .*\[nochecks\] OCSPflag: NOCHECKS: OCSP "
                        r"answers are taken without checking whether the "
                        r"signer may answer for the issuer")
        # Verified now; it just does not know its own CA certificate.
        passes("nochecks", r".*OCSP: .*CN=mtlib Test Intermediate CA: no "
               r"clear answer: " + url + r" does not know the certificate")

    with t.case("the responder gone: clear answers are remembered"):
        responder.signal(signal.SIGKILL)
        wait_closed([rport])
        mark = mt.log_mark()
        passes("aia", r".*OCSP check of " + ADDR + r": 1 certificate good",
               since=mark)
        refused("revoked", r"certificate revoked: .*CN=mail\.test: revoked "
                r"on .* says " + url + r" \(remembered\)", since=mark)
        if "asking" in mt.log_text()[mark:]:
            fail("a remembered answer was asked again")

    with t.case("without OCSP options nothing is asked"):
        expect_equal("off", talk(ports["off"]), b"ping\n")
        if "[off]" in mt.log_text() and "OCSP" in "".join(
                line for line in mt.log_text().splitlines()
                if "[off]" in line):
            fail("OCSP asked for a service without OCSP options")

    with t.case("-t refuses OCSPaia with verifyChain = no"):
        bad = t.write("bad.conf", f"[x]\nclient = yes\naccept = 127.0.0.1:"
                      f"{t.port()}\nconnect = 127.0.0.1:1\nverifyChain = no\n"
                      "OCSPaia = yes\n")
        r = t.run([mtlib.daemon.binary(), "-t", bad], check=False)
        expect_equal("exit", r.returncode, 78)
        if b"bad.conf:6: error: [x] OCSPaia: OCSP checks a verified chain" \
                not in r.stderr:
            fail(r.stderr.decode())

    expect_equal("exit code", mt.stop(), 0)


mtlib.run(main)
