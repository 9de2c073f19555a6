#!/usr/bin/python3
"""protocol = pop3 | imap | smtp against real servers: Dovecot's POP3 and
IMAP STARTTLS ports and an SMTP server that requires STARTTLS, with poplib,
imaplib and smtplib as the legacy plaintext clients.

Dovecot listens on 127.0.0.2, so it refuses a plaintext login as a remote
server would (checked first): a login through the tunnel proves TLS."""
import imaplib
import os
import poplib
import re
import smtplib
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mtlib  # noqa: E402
from mtlib import (Dovecot, Mailtunnel, SmtpServer, expect_equal,  # noqa: E402
                   expect_raises, fail, make_messages, message_id)

SMTP_PASS = "smtp-Secret-2"


def main(t):
    pki = t.pki()
    msgs = make_messages(3, sizes=(300, 5000, 70000))
    dc = Dovecot(t, pki.leaf("good"), msgs, listen="127.0.0.2").start()
    smtp = SmtpServer(t, pki.leaf("good"), auth=("sender", SMTP_PASS),
                      require_starttls=True, smtps=False).start()
    p_pop, p_imap, p_smtp = t.port(), t.port(), t.port()
    mt = Mailtunnel(t, f"""
debug = info
client = yes
CAfile = {pki.ca}
checkHost = mail.test

[pop3]
accept = 127.0.0.1:{p_pop}
connect = {dc.host}:{dc.ports['pop3']}
protocol = pop3

[imap]
accept = 127.0.0.1:{p_imap}
connect = {dc.host}:{dc.ports['imap']}
protocol = IMAP

[smtp]
accept = 127.0.0.1:{p_smtp}
connect = 127.0.0.1:{smtp.ports['smtp']}
protocol = smtp
protocolHost = relay.mailtunnel.test
""").start(wait_ports=[p_pop, p_imap, p_smtp])

    with t.case("control: Dovecot refuses a plaintext login from here"):
        p = poplib.POP3(dc.host, dc.ports["pop3"], timeout=10)
        err = expect_raises(poplib.error_proto, p.user, dc.user)
        if "plaintext authentication disallowed" not in str(err).lower():
            fail(f"unexpected refusal: {err}")
        p.quit()

    with t.case("poplib through STLS: greeting, login, every message"):
        p = poplib.POP3("127.0.0.1", p_pop, timeout=10)
        if not re.match(rb"\+OK Dovecot .*ready", p.getwelcome()):
            fail(f"greeting: {p.getwelcome()!r}")
        caps = p.capa()
        if "STLS" in caps:
            fail(f"STLS offered again inside TLS: {caps}")
        p.user(dc.user)
        p.pass_(dc.password)
        count, _ = p.stat()
        expect_equal("count", count, len(msgs))
        for i in range(count):
            _, lines, _ = p.retr(i + 1)
            expect_equal(f"message {i + 1}", b"\r\n".join(lines) + b"\r\n",
                         msgs[i])
        p.quit()
        mt.wait_for_log(r"\[pop3\] #\d+ 127\.0\.0\.1:\d+: connected to "
                        r"127\.0\.0\.2:\d+ \[127\.0\.0\.2:\d+\] with STLS: "
                        r"TLSv1\.[23]")

    with t.case("imaplib through STARTTLS: fresh CAPABILITY, login, fetch"):
        m = imaplib.IMAP4("127.0.0.1", p_imap, timeout=10)
        expect_equal("greeting", m.welcome,
                     b"* OK mailtunnel: connected to the server over TLS")
        for gone in ("STARTTLS", "LOGINDISABLED"):
            if gone in m.capabilities:
                fail(f"{gone} still announced inside TLS: {m.capabilities}")
        m.login(dc.user, dc.password)
        typ, data = m.select("INBOX", readonly=True)
        expect_equal("exists", int(data[0]), len(msgs))
        typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[])")
        bodies = [d[1] for d in data if isinstance(d, tuple)]
        expect_equal("bodies", bodies, msgs)
        m.logout()
        mt.wait_for_log(r"\[imap\] .*connected to .* with STARTTLS: TLSv1")

    with t.case("Dovecot saw both logins over TLS"):
        with open(dc.log_path, errors="replace") as f:
            logins = re.findall(r"(?:pop3|imap)-login: Info: Login: "
                                r"user=<box>.*", f.read())
        expect_equal("logins", sorted(line.split("-")[0] for line in logins),
                     ["imap", "pop3"])
        for line in logins:
            if ", TLS," not in line:
                fail(f"login without TLS: {line}")

    with t.case("smtplib through STARTTLS: greeting, EHLO sees AUTH, send"):
        s = smtplib.SMTP(timeout=10)
        code, msg = s.connect("127.0.0.1", p_smtp)
        expect_equal("greeting code", code, 220)
        s.ehlo("legacy.example")
        if not s.has_extn("auth"):
            fail(f"AUTH not offered through the tunnel: {s.esmtp_features}")
        if s.has_extn("starttls"):
            fail("STARTTLS offered again inside TLS")
        s.login("sender", SMTP_PASS)
        s.sendmail("a@example.org", ["b@example.net"], msgs[0])
        s.quit()
        got = smtp.wait_received(1)
        expect_equal("tls on the server side", got[0].tls, True)
        expect_equal("the client's own EHLO", got[0].helo, "legacy.example")
        expect_equal("message id", got[0].header("Message-ID"),
                     message_id(0))
        mt.wait_for_log(r"\[smtp\] .*connected to .* with STARTTLS")

    with t.case("secrets never reach the log"):
        text = mt.log_text()
        for secret in (dc.password, SMTP_PASS):
            if secret in text:
                fail(f"{secret!r} appears in the log")

    with t.case("SIGTERM: exit 0"):
        expect_equal("exit code", mt.stop(), 0)


mtlib.run(main)
