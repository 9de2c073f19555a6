#!/usr/bin/python3
"""Legacy plaintext clients (poplib, imaplib, smtplib) through the tunnel to
real servers over verified TLS: Dovecot POP3S and IMAPS, an SMTPS server."""
import imaplib
import os
import poplib
import smtplib
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mtlib  # noqa: E402
from mtlib import (Dovecot, Mailtunnel, SmtpServer, expect_equal,  # noqa: E402
                   fail, make_messages, message_id)


def main(t):
    pki = t.pki()
    msgs = make_messages(5, sizes=(300, 5000, 70000))
    dc = Dovecot(t, pki.leaf("good"), msgs).start()
    smtp = SmtpServer(t, pki.leaf("good"), auth=("sender", "smtp-Secret-1"),
                      smtp=False).start()
    p_pop, p_imap, p_smtp = t.port(), t.port(), t.port()
    mt = Mailtunnel(t, f"""
debug = info
client = yes
CAfile = {pki.ca}

[pop3]
accept = 127.0.0.1:{p_pop}
connect = 127.0.0.1:{dc.ports['pop3s']}
checkHost = mail.test

[imap]
accept = 127.0.0.1:{p_imap}
connect = localhost:{dc.ports['imaps']}

[smtp]
accept = 127.0.0.1:{p_smtp}
connect = 127.0.0.1:{smtp.ports['smtps']}
""").start(wait_ports=[p_pop, p_imap, p_smtp])

    with t.case("poplib: list, retrieve every message byte for byte, quit"):
        p = poplib.POP3("127.0.0.1", p_pop, timeout=10)
        expect_equal("greeting", p.getwelcome()[:3], b"+OK")
        p.user(dc.user)
        p.pass_(dc.password)
        count, _ = p.stat()
        expect_equal("count", count, len(msgs))
        for i in range(count):
            _, lines, _ = p.retr(i + 1)
            expect_equal(f"message {i + 1}", b"\r\n".join(lines) + b"\r\n",
                         msgs[i])
        p.quit()

    with t.case("imaplib: login, select, fetch by UID, logout"):
        m = imaplib.IMAP4("127.0.0.1", p_imap, timeout=10)
        m.login(dc.user, dc.password)
        typ, data = m.select("INBOX", readonly=True)
        expect_equal("exists", int(data[0]), len(msgs))
        typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[])")
        bodies = [d[1] for d in data if isinstance(d, tuple)]
        expect_equal("bodies", bodies, msgs)
        m.logout()

    with t.case("smtplib: EHLO over TLS, AUTH, send, server got it"):
        s = smtplib.SMTP("127.0.0.1", p_smtp, timeout=10)
        s.ehlo("legacy.example")
        if not s.has_extn("auth"):
            fail("AUTH not offered through the tunnel")
        s.login("sender", "smtp-Secret-1")
        s.sendmail("a@example.org", ["b@example.net"], msgs[0])
        s.quit()
        got = smtp.wait_received(1)
        expect_equal("envelope", (got[0].mail_from, got[0].rcpt_tos),
                     ("a@example.org", ["b@example.net"]))
        expect_equal("tls on the server side", got[0].tls, True)
        expect_equal("message id", got[0].header("Message-ID"),
                     message_id(0))

    with t.case("log lines name the service and the connection"):
        mt.wait_for_log(r"\[pop3\] #\d+ 127\.0\.0\.1:\d+: connected to "
                        r"127\.0\.0\.1:\d+ \[127\.0\.0\.1:\d+\]: TLSv1\.3")
        mt.wait_for_log(r"\[imap\] #\d+ 127\.0\.0\.1:\d+: closed after")

    with t.case("secrets never reach the log"):
        text = mt.log_text()
        for secret in (dc.password, "smtp-Secret-1"):
            if secret in text:
                fail(f"{secret!r} appears in the log")

    with t.case("SIGTERM: exit 0"):
        expect_equal("exit code", mt.stop(), 0)


mtlib.run(main)
