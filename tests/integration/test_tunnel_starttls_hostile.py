#!/usr/bin/python3
"""protocol = pop3 | imap | smtp against scripted hostile servers: one case
per security rule. Each checks what the client got (the protocol's short
error line, never the server's plaintext), what the server received
before TLS (never a client byte), and the log line that says why."""
import os
import re
import smtplib
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mtlib  # noqa: E402
from mtlib import (Mailtunnel, ScriptedServer, expect_equal,  # noqa: E402
                   expect_raises, fail, server_context)
from mtlib import script as S  # noqa: E402

CAPA = b"+OK\r\nTOP\r\nSTLS\r\nUSER\r\n.\r\n"
IMAP_HI = b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n"
SMTP_HI = b"220-mail.test ESMTP\r\n220-no UCE\r\n220 ready\r\n"
EHLO_OK = b"250-mail.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
POP_REPLIES = [(b"USER", b"+OK\r\n"), (b"PASS", b"+OK logged in\r\n"),
               (b"STAT", b"+OK 0 0\r\n"), (b"QUIT", b"+OK bye\r\n")]
INJECTED = "the server sent plaintext after agreeing to TLS"
ADDR = r"127\.0\.0\.1:\d+ \[127\.0\.0\.1:\d+\]"


def pop3_to_stls(greeting=b"+OK ready <1.2@mail.test>\r\n"):
    return [S.send(greeting), S.expect_line(b"CAPA"), S.send(CAPA),
            S.expect_line(b"STLS")]


def imap_to_starttls():
    return [S.send(IMAP_HI), S.expect_line(b"mt2 STARTTLS")]


def smtp_to_starttls(ehlo=b"EHLO relay.example"):
    return [S.send(SMTP_HI), S.expect_line(ehlo), S.send(EHLO_OK),
            S.expect_line(b"STARTTLS")]


def inject_mid_handshake(cert):
    """TLS 1.2 server side up to its first flight (ServerHelloDone), then
    plaintext in the same write where its next records belong."""
    def step(conn):
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = server_context(cert, max_version=ssl.TLSVersion.TLSv1_2) \
            .wrap_bio(inc, out, server_side=True)
        while True:
            try:
                obj.do_handshake()
                return
            except ssl.SSLWantReadError:
                pass
            flight = out.read()
            if flight:
                conn.flight = flight
                conn.sock.sendall(flight + b"+OK extra\r\n")
                break
            data = conn.sock.recv(65536)
            if not data:
                return
            inc.write(data)
        try:
            while conn.sock.recv(65536):    # until the tunnel hangs up
                pass
        except ConnectionResetError:        # it did not read our flight
            pass
    return S.call(step)


def talk(port, data=b"", timeout=15):
    """Connect, send data at once, read until the tunnel closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        if data:
            s.sendall(data)
        out = bytearray()
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return bytes(out)
            out += chunk


def default_ehlo():
    name = socket.gethostname()
    if "." in name and re.fullmatch(r"[A-Za-z0-9.-]+", name):
        return name
    return "[127.0.0.1]"


def scripts(pki):
    good, expired = pki.leaf("good"), pki.leaf("expired")
    ehlo_default = b"EHLO " + default_ehlo().encode()
    return {
        # name: (protocol, steps, extra config)
        "inject1": ("pop3", pop3_to_stls() + [
            S.send(b"+OK go\r\n+OK extra\r\n"), S.record_all()], ""),
        "inject2": ("pop3", pop3_to_stls() + [
            S.send(b"+OK go\r\n"), S.send(b"+OK extra\r\n"),
            S.record_all()], ""),
        "inject3": ("pop3", pop3_to_stls() + [
            S.send(b"+OK go\r\n"), S.sleep(0.5), S.send(b"+OK extra\r\n"),
            S.record_all()], ""),
        "inject4": ("pop3", pop3_to_stls() + [
            S.send(b"+OK go\r\n"), inject_mid_handshake(good)], ""),
        "imapinject": ("imap", imap_to_starttls() + [
            S.send(b"mt2 OK go\r\n* OK extra\r\n"), S.record_all()], ""),
        "smtpinject": ("smtp", smtp_to_starttls() + [
            S.send(b"220 go\r\n"), S.sleep(0.5), S.send(b"250 extra\r\n"),
            S.record_all()], "protocolHost = relay.example"),
        "nostls": ("pop3", [
            S.send(b"+OK hi\r\n"), S.expect_line(b"CAPA"),
            S.send(b"+OK\r\nTOP\r\nUSER\r\n.\r\n"), S.expect_eof()], ""),
        "stlserr": ("pop3", pop3_to_stls() + [
            S.send(b"-ERR not now\r\n"), S.expect_eof()], ""),
        "busy": ("pop3", [S.send(b"-ERR too busy\r\n"), S.expect_eof()], ""),
        "imapnocap": ("imap", [
            S.send(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n"),
            S.expect_eof()], ""),
        "imapno": ("imap", imap_to_starttls() + [
            S.send(b"mt2 NO not now\r\n"), S.expect_eof()], ""),
        "imapbad": ("imap", [
            S.send(b"* OK hi\r\n"), S.expect_line(b"mt1 CAPABILITY"),
            S.send(b"* CAPABILITY IMAP4rev1 STARTTLS\r\nmt1 OK\r\n"),
            S.expect_line(b"mt2 STARTTLS"), S.send(b"mt2 BAD no\r\n"),
            S.expect_eof()], ""),
        "preauth": ("imap", [
            S.send(b"* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] welcome\r\n"),
            S.expect_eof()], ""),
        "alert": ("imap", imap_to_starttls() + [
            S.send(b"* OK [ALERT] Phishing: send your password to x\r\n"),
            S.sleep(0.2),
            S.send(b"* OK [ALERT] Second alert\r\n* 1 EXISTS\r\n"
                   b"mt2 OK Begin TLS\r\n"),
            S.start_tls(good),
            S.respond_until([
                (b"a1 CAPABILITY", b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n"
                                   b"a1 OK done\r\n"),
                (b"a2 LOGOUT", b"* BYE see you\r\na2 OK bye\r\n")],
                stop=b"a2 LOGOUT")], ""),
        "smtp454": ("smtp", smtp_to_starttls() + [
            S.send(b"454 4.7.0 TLS not available due to local problem\r\n"),
            S.expect_eof()], "protocolHost = relay.example"),
        "smtpnotls": ("smtp", [
            S.send(b"220 hi\r\n"), S.expect_line(b"EHLO relay.example"),
            S.send(b"250-mail.test\r\n250 AUTH PLAIN\r\n"), S.expect_eof()],
            "protocolHost = relay.example"),
        "smtpok": ("smtp", smtp_to_starttls() + [
            S.send(b"220 2.0.0 go\r\n"), S.start_tls(good),
            S.respond_until([
                (b"EHLO", b"250-mail.test\r\n250-AUTH PLAIN\r\n250 SIZE\r\n"),
                (b"QUIT", b"221 bye\r\n")], stop=b"QUIT")],
            "protocolHost = relay.example"),
        "smtpdefault": ("smtp", smtp_to_starttls(ehlo_default) + [
            S.send(b"454 no\r\n"), S.expect_eof()], ""),
        "early": ("pop3", [S.sleep(0.3)] + pop3_to_stls(b"+OK early\r\n") + [
            S.send(b"+OK go\r\n"), S.start_tls(good),
            S.respond_until(POP_REPLIES, stop=b"QUIT")], ""),
        "overlong": ("pop3", [S.send(b"+OK " + b"A" * 9000 + b"\r\n"),
                              S.expect_eof()], ""),
        "stall": ("pop3", [S.send(b"+OK hi\r\n"), S.expect_line(b"CAPA"),
                           S.expect_eof(timeout=15)], "TIMEOUTconnect = 2"),
        "expired": ("pop3", pop3_to_stls() + [
            S.send(b"+OK go\r\n"), S.start_tls(expired)], ""),
    }


def main(t):
    pki = t.pki()
    servers, ports = {}, {}
    conf = f"debug = info\nclient = yes\nCAfile = {pki.ca}\ncheckHost = mail.test\n"
    for name, (proto, steps, extra) in scripts(pki).items():
        servers[name] = ScriptedServer(t, steps)
        ports[name] = t.port()
        conf += (f"\n[{name}]\naccept = 127.0.0.1:{ports[name]}\n"
                 f"connect = 127.0.0.1:{servers[name].port}\n"
                 f"protocol = {proto}\n{extra}\n")
    # Failover: a server without STLS first, then a good one.
    ports["failover"] = t.port()
    conf += (f"\n[failover]\naccept = 127.0.0.1:{ports['failover']}\n"
             f"connect = 127.0.0.1:{servers['nostls'].port}\n"
             f"connect = 127.0.0.1:{servers['early'].port}\n"
             f"protocol = pop3\n")
    # Nothing listens there: the client still gets a line.
    ports["down"] = t.port()
    conf += (f"\n[down]\naccept = 127.0.0.1:{ports['down']}\n"
             f"connect = 127.0.0.1:{t.port()}\nprotocol = imap\n")
    mt = Mailtunnel(t, conf).start(wait_ports=list(ports.values()))

    def refused(name, client_line, log, plain_in, data=b""):
        got = talk(ports[name], data)
        expect_equal("client got", got, client_line)
        c = servers[name].conn(0)
        servers[name].check()
        if plain_in is not None:
            expect_equal("server got before TLS", bytes(c.plain_in), plain_in)
        mt.wait_for_log(r"err: \[" + name + r"\] #\d+ 127\.0\.0\.1:\d+: " + log)
        return c

    def injected(name, prefix, client_line, count, excerpt):
        c = refused(name, client_line, r"STARTTLS with " + ADDR +
                    r" failed: plaintext injection: the server sent " + count +
                    r" bytes after accepting (STLS|STARTTLS), before the TLS "
                    r"handshake \('" + excerpt, None)
        rest = bytes(c.plain_in)
        if not rest.startswith(prefix):
            fail(f"server got {rest!r}")
        rest = rest[len(prefix):]
        # Only ever a TLS ClientHello after the command, never client bytes.
        if rest and not rest.startswith(b"\x16\x03"):
            fail(f"after the command the server got {rest[:40]!r}")
        return rest

    with t.case("'+OK go\\r\\n+OK extra\\r\\n' in one write: injection"):
        rest = injected("inject1", b"CAPA\r\nSTLS\r\n",
                        f"-ERR mailtunnel: {INJECTED}\r\n".encode(),
                        "11", r"\+OK extra\?\?'\)")
        expect_equal("no TLS attempted", rest, b"")

    with t.case("the same in two writes: injection"):
        injected("inject2", b"CAPA\r\nSTLS\r\n",
                 f"-ERR mailtunnel: {INJECTED}\r\n".encode(), r"(at least )?\d+",
                 r"\+OK extra")

    with t.case("the second write after the switch, before the handshake"):
        rest = injected("inject3", b"CAPA\r\nSTLS\r\n",
                        f"-ERR mailtunnel: {INJECTED}\r\n".encode(),
                        "11", r"\+OK extra\?\?'\)")
        if not rest:
            fail("the tunnel never started TLS: the late case was not hit")

    with t.case("plaintext between TLS 1.2 handshake records: injection"):
        got = talk(ports["inject4"])
        expect_equal("client got", got,
                     f"-ERR mailtunnel: {INJECTED}\r\n".encode())
        c = servers["inject4"].conn(0)
        servers["inject4"].check()
        if not getattr(c, "flight", b""):
            fail("the server never sent its first TLS flight")
        mt.wait_for_log(r"err: \[inject4\] .*STARTTLS with " + ADDR +
                        r" failed: plaintext injection: the server sent 11 "
                        r"bytes after accepting STLS, during the TLS "
                        r"handshake \('\+OK extra\?\?'\)")

    with t.case("IMAP: untagged line after the tagged OK: injection"):
        injected("imapinject", b"mt2 STARTTLS\r\n",
                 f"* BYE mailtunnel: {INJECTED}\r\n".encode(), "12",
                 r"\* OK extra")

    with t.case("SMTP: a reply after 220, before the handshake: injection"):
        rest = injected("smtpinject", b"EHLO relay.example\r\nSTARTTLS\r\n",
                        f"421 localhost mailtunnel: {INJECTED}\r\n".encode(),
                        "11", r"250 extra")
        if not rest:
            fail("the tunnel never started TLS: the late case was not hit")

    with t.case("POP3 without STLS: refused, no plaintext fallback"):
        refused("nostls", b"-ERR mailtunnel: the server does not offer "
                b"STARTTLS\r\n", r"STARTTLS with " + ADDR + r" failed: the "
                r"server does not offer STLS \(not in its CAPA list\)",
                b"CAPA\r\n")

    with t.case("STLS answered -ERR"):
        refused("stlserr", b"-ERR mailtunnel: the server refused STARTTLS\r\n",
                r"STARTTLS with " + ADDR + r" failed: the server refused "
                r"STLS: -ERR not now", b"CAPA\r\nSTLS\r\n")

    with t.case("greeting -ERR: the session is refused"):
        refused("busy", b"-ERR mailtunnel: the server refused the session\r\n",
                r"STARTTLS with " + ADDR + r" failed: the server refused "
                r"the session: -ERR too busy", b"")

    with t.case("IMAP greeting without STARTTLS"):
        refused("imapnocap", b"* BYE mailtunnel: the server does not offer "
                b"STARTTLS\r\n", r"STARTTLS with " + ADDR + r" failed: the "
                r"server does not offer STARTTLS \(not in the CAPABILITY "
                r"list of its greeting\)", b"")

    with t.case("IMAP STARTTLS answered NO"):
        refused("imapno", b"* BYE mailtunnel: the server refused STARTTLS\r\n",
                r"STARTTLS with " + ADDR + r" failed: the server refused "
                r"STARTTLS: mt2 NO not now", b"mt2 STARTTLS\r\n")

    with t.case("IMAP STARTTLS answered BAD (after CAPABILITY)"):
        refused("imapbad", b"* BYE mailtunnel: the server refused "
                b"STARTTLS\r\n", r"STARTTLS with " + ADDR + r" failed: the "
                r"server refused STARTTLS: mt2 BAD no",
                b"mt1 CAPABILITY\r\nmt2 STARTTLS\r\n")

    with t.case("IMAP PREAUTH greeting: nothing is sent, the client told"):
        refused("preauth", b"* BYE mailtunnel: the server skipped STARTTLS "
                b"(PREAUTH)\r\n", r"STARTTLS with " + ADDR + r" failed: the "
                r"server greeted with PREAUTH, which rules out STARTTLS; "
                r"refusing to go on without TLS", b"")

    with t.case("IMAP untagged ALERTs before the tagged OK never reach "
                "the client"):
        got = talk(ports["alert"], b"a1 CAPABILITY\r\na2 LOGOUT\r\n")
        expect_equal("client got", got,
                     b"* OK mailtunnel: connected to the server over TLS\r\n"
                     b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\na1 OK done\r\n"
                     b"* BYE see you\r\na2 OK bye\r\n")
        c = servers["alert"].conn(0)
        servers["alert"].check()
        expect_equal("before TLS", bytes(c.plain_in), b"mt2 STARTTLS\r\n")
        expect_equal("inside TLS", bytes(c.tls_in),
                     b"a1 CAPABILITY\r\na2 LOGOUT\r\n")

    with t.case("SMTP 454: 421 to the client"):
        e = expect_raises(smtplib.SMTPConnectError, smtplib.SMTP,
                          "127.0.0.1", ports["smtp454"], timeout=10)
        expect_equal("reply", (e.smtp_code, e.smtp_error),
                     (421, b"localhost mailtunnel: the server refused "
                      b"STARTTLS"))
        servers["smtp454"].conn(0)
        servers["smtp454"].check()
        expect_equal("server got", bytes(servers["smtp454"].conn(0).plain_in),
                     b"EHLO relay.example\r\nSTARTTLS\r\n")
        mt.wait_for_log(r"err: \[smtp454\] .*STARTTLS with " + ADDR +
                        r" failed: the server refused STARTTLS: 454 4\.7\.0 "
                        r"TLS not available due to local problem")

    with t.case("SMTP without STARTTLS in EHLO"):
        refused("smtpnotls", b"421 localhost mailtunnel: the server does not "
                b"offer STARTTLS\r\n", r"STARTTLS with " + ADDR + r" failed: "
                r"the server does not offer STARTTLS \(not in its EHLO "
                r"reply\)", b"EHLO relay.example\r\n")

    with t.case("SMTP: multi-line greeting and EHLO, protocolHost, smtplib"):
        s = smtplib.SMTP(timeout=10)
        code, msg = s.connect("127.0.0.1", ports["smtpok"])
        expect_equal("greeting", (code, msg),
                     (220, b"mail.test ESMTP\nno UCE\nready"))
        s.ehlo("legacy.example")
        if not s.has_extn("auth") or s.has_extn("starttls"):
            fail(f"features: {s.esmtp_features}")
        s.quit()
        c = servers["smtpok"].conn(0)
        servers["smtpok"].check()
        expect_equal("before TLS", bytes(c.plain_in),
                     b"EHLO relay.example\r\nSTARTTLS\r\n")
        expect_equal("inside TLS", bytes(c.tls_in),
                     b"ehlo legacy.example\r\nquit\r\n")

    with t.case(f"SMTP: the default EHLO name is {default_ehlo()}"):
        talk(ports["smtpdefault"])
        servers["smtpdefault"].conn(0)
        servers["smtpdefault"].check()

    with t.case("a client that sends USER/PASS before the greeting: the "
                "server never sees them in plaintext"):
        got = talk(ports["early"], b"USER box\r\nPASS early-Secret-3\r\n"
                   b"STAT\r\nQUIT\r\n")
        expect_equal("client got", got, b"+OK early\r\n+OK\r\n"
                     b"+OK logged in\r\n+OK 0 0\r\n+OK bye\r\n")
        c = servers["early"].conn(0)
        servers["early"].check()
        expect_equal("before TLS", bytes(c.plain_in), b"CAPA\r\nSTLS\r\n")
        expect_equal("inside TLS", bytes(c.tls_in),
                     b"USER box\r\nPASS early-Secret-3\r\nSTAT\r\nQUIT\r\n")
        if "early-Secret-3" in mt.log_text():
            fail("the password reached the log")

    with t.case("an overlong line ends the dialogue"):
        refused("overlong", b"-ERR mailtunnel: the server broke the protocol "
                b"before TLS\r\n", r"STARTTLS with " + ADDR + r" failed: the "
                r"server sent a line longer than 8192 bytes while we waited "
                r"for the greeting", b"")

    with t.case("a stalled server: TIMEOUTconnect, then the client is told"):
        start = time.monotonic()
        refused("stall", b"-ERR mailtunnel: the server did not answer in "
                b"time\r\n", r"STARTTLS with " + ADDR + r" failed: no reply "
                r"within 2s \(TIMEOUTconnect\) while we waited for the CAPA "
                r"reply", b"CAPA\r\n")
        took = time.monotonic() - start
        if not 1.5 <= took <= 5:
            fail(f"took {took:.1f}s, want about 2s")

    with t.case("an expired certificate after STLS is refused as usual"):
        refused("expired", b"-ERR mailtunnel: TLS with the server failed\r\n",
                r"TLS handshake with " + ADDR + r" failed: certificate "
                r"expired on", None)

    with t.case("failover: a server without STLS, then a good one"):
        got = talk(ports["failover"], b"QUIT\r\n")
        expect_equal("client got", got, b"+OK early\r\n+OK bye\r\n")
        mt.wait_for_log(r"\[failover\] .*does not offer STLS")
        mt.wait_for_log(r"\[failover\] .*connected to .* with STLS")

    with t.case("no server reachable: the client is told, not just closed"):
        expect_equal("client got", talk(ports["down"]),
                     b"* BYE mailtunnel: cannot reach the server\r\n")
        mt.wait_for_log(r"err: \[down\] .*no usable server \(1 connect "
                        r"target tried\); telling the client \"\* BYE "
                        r"mailtunnel: cannot reach the server\" and closing")

    with t.case("every refusal ended with the summary line"):
        mt.wait_for_log(r"err: \[preauth\] .*no usable server \(1 connect "
                        r"target tried\); telling the client \"\* BYE "
                        r"mailtunnel: the server skipped STARTTLS "
                        r"\(PREAUTH\)\" and closing")

    expect_equal("exit code", mt.stop(), 0)


mtlib.run(main)
