#!/usr/bin/python3
"""The two stunnel files from a user's documentation and one shaped like
Debian's stunnel sample, unchanged, against
local servers that answer as pop.gmail.com, imap.gmail.com and
smtp.gmail.com on their real ports, inside a network namespace where those
names resolve to 127.0.0.1 and the test CA is the system trust store."""
import imaplib
import os
import poplib
import shutil
import smtplib
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mtlib  # noqa: E402
from mtlib import (Dovecot, Mailtunnel, Namespace, SmtpServer,  # noqa: E402
                   expect_equal, fail, make_messages)
from mtlib.netns import GMAIL_NAMES  # noqa: E402


def pop_session(dc, msgs):
    p = poplib.POP3("127.0.0.1", 110, timeout=10)
    p.user(dc.user)
    p.pass_(dc.password)
    expect_equal("messages", p.stat()[0], len(msgs))
    _, lines, _ = p.retr(1)
    expect_equal("message 1", b"\r\n".join(lines) + b"\r\n", msgs[0])
    p.quit()


def smtp_session(smtp, n):
    s = smtplib.SMTP("127.0.0.1", 25, timeout=10)
    s.ehlo("legacy.example")
    s.login("me@gmail.com", "app-password-1")
    s.sendmail("me@gmail.com", ["you@example.org"], b"Subject: hi\r\n\r\nhi\r\n")
    s.quit()
    smtp.wait_received(n)


def run_file(t, name, dc, smtp, msgs, want_skipped):
    src = os.path.join(HERE, "data", name)
    text = open(src).read()
    mt = Mailtunnel(t, text, name=name).start(wait_ports=[110, 25])
    with t.case(f"{name}: warnings name the file, the line and why"):
        log = mt.log_text()
        for section in want_skipped:
            if f"[{section}] has no options (all commented out?); skipped" \
                    not in log:
                fail(f"no warning for [{section}]:\n{log}")
        if "sslVersion: SSLV3 is refused by every current mail server" \
                not in log:
            fail(f"no SSLV3 warning:\n{log}")
    with t.case(f"{name}: poplib on 127.0.0.1:110 reads from pop.gmail.com"):
        pop_session(dc, msgs)
    with t.case(f"{name}: smtplib on 127.0.0.1:25 sends via smtp.gmail.com "
                "despite sslVersion = SSLV3"):
        smtp_session(smtp, len(smtp.received()) + 1)
    with t.case(f"{name}: verified: a certificate from an unknown CA is "
                "refused"):
        dc.set_cert(dc_pki_leaf(t, "unknown_ca"))
        try:
            poplib.POP3("127.0.0.1", 110, timeout=10)
            fail("a POP3 greeting came through an unverified server")
        except (poplib.error_proto, EOFError, ConnectionError, OSError):
            pass
        mt.wait_for_log(r"err: \[gmail-pop3\] .*TLS handshake with "
                        r"pop\.gmail\.com:995 \[127\.0\.0\.1:995\] failed: "
                        r"unknown CA")
        dc.set_cert(dc_pki_leaf(t, "good"))
    expect_equal("exit", mt.stop(), 0)
    return text


def dc_pki_leaf(t, variant):
    return t.pki().leaf(variant)


def main(t):
    pki = t.pki()
    msgs = make_messages(3)
    dc = Dovecot(t, pki.leaf("good"), msgs,
                 ports={"pop3": t.port(), "pop3s": 995, "imap": t.port(),
                        "imaps": 993}).start()
    smtp = SmtpServer(t, pki.leaf("good"), auth=("me@gmail.com",
                                                 "app-password-1"),
                      ports={"smtp": t.port(), "smtps": 465}).start()
    text = run_file(t, "user-stunnel-1.conf", dc, smtp, msgs,
                    ["pop3s", "imaps", "ssmtp", "gmail-imap"])
    run_file(t, "user-stunnel-2.conf", dc, smtp, msgs, [])

    with t.case("uncommenting [gmail-imap] gives IMAP on 143"):
        edited = text.replace(";client = yes  \n;accept = 127.0.0.1:143",
                              "client = yes  \naccept = 127.0.0.1:143")
        edited = edited.replace(";connect = imap.gmail.com:993",
                                "connect = imap.gmail.com:993")
        if edited.count("imap.gmail.com:993") != 1 or ";client" in \
                edited.split("[gmail-imap]")[1].split("[")[0]:
            fail("the edit did not apply")
        mt = Mailtunnel(t, edited, name="edited").start(
            wait_ports=[110, 143, 25])
        m = imaplib.IMAP4("127.0.0.1", 143, timeout=10)
        m.login(dc.user, dc.password)
        typ, data = m.select("INBOX", readonly=True)
        expect_equal("exists", int(data[0]), len(msgs))
        m.logout()
        expect_equal("exit", mt.stop(), 0)

    with t.case("the Debian sample's shape (CApath, OCSPaia) runs "
                "unchanged"):
        sample = open(os.path.join(HERE, "data",
                                   "stunnel-sample-gmail.conf")).read()
        mt = Mailtunnel(t, "debug = info\n" + sample, name="sample").start(
            wait_ports=[110, 143, 25])
        pop_session(dc, msgs)
        m = imaplib.IMAP4("127.0.0.1", 143, timeout=10)
        m.login(dc.user, dc.password)
        m.logout()
        smtp_session(smtp, len(smtp.received()) + 1)
        for name in ("pop3", "imap", "smtp"):
            mt.wait_for_log(r"\[gmail-" + name + r"\] .*OCSP check of "
                            r"[a-z]+\.gmail\.com:\d+ .*: no certificate of "
                            r"the chain names an OCSP responder")
        expect_equal("exit", mt.stop(), 0)

    if shutil.which("stunnel4"):
        with t.case("for comparison: stunnel refuses the first file"):
            path = t.write("stunnel.conf", "foreground = yes\npid =\n" + text)
            r = t.run(["stunnel4", path], check=False, timeout=20)
            if r.returncode == 0:
                fail("stunnel accepted it; the README's claim is wrong")


mtlib.run(main, netns=Namespace(hosts=GMAIL_NAMES, trust_test_ca=True))
