#!/usr/bin/python3
"""Delivery to real SMTP and LMTP servers (python3-aiosmtpd) through the
fetcher stand-in tests/integration/deliver_driver: envelopes, awkward
messages, one connection for many messages, STARTTLS and implicit TLS,
refusals at every step, LMTP replies, recovery, and the memory a 20 MB
message costs."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mtlib  # noqa: E402
from mtlib import SmtpServer, builddir, expect_equal, fail  # noqa: E402

DRIVER = os.path.join(builddir(), "tests", "integration", "deliver_driver")

HEAD = (b"Return-Path: <bounce@example.org>\r\n"
        b"Delivered-To: box@example.net\r\n"
        b"Message-ID: <m1@example.org>\r\n")

AWKWARD = {
    "dots": HEAD + b"Subject: dots\r\n\r\n.\r\n..two\r\n.start\r\nend\r\n",
    "bare_lf": HEAD + b"Subject: lf\r\n\r\nbare\nline feeds\nend\n",
    "bare_cr": HEAD + b"Subject: cr\r\n\r\nbare\rcr\r\n.\rx\r\n",
    "no_final_newline": HEAD + b"Subject: nl\r\n\r\nlast line",
    "empty_body": HEAD + b"Subject: empty\r\n\r\n",
    "from_lines": HEAD + b"Subject: from\r\n\r\nFrom here\r\n>From there\r\n",
    "eight_bit": HEAD + "Subject: 8\r\n\r\nd\u00e9j\u00e0 vu \u2713\r\n"
    .encode(),
}


def wire_form(raw):
    """What the server must receive: every line end CRLF, closed."""
    text = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    text = text.replace(b"\n", b"\r\n")
    return text if text.endswith(b"\r\n") or not text else text + b"\r\n"


def drive(t, spec, files, *opts, env=None):
    """Run the driver; return (exit code, {event: [lines]}, stdout, stderr)."""
    r = t.run([DRIVER, *opts, spec, *files], check=False, timeout=90,
              env=env)
    out, err = r.stdout.decode(), r.stderr.decode()
    events = {}
    for line in out.splitlines():
        events.setdefault(line.split(" ", 1)[0], []).append(line)
    return r.returncode, events, out, err


def expect_line(out, pattern):
    if not re.search(pattern, out, re.M):
        fail(f"no line matching {pattern!r} in:\n{out}")


def main(t):
    pki = t.pki()
    smtp = SmtpServer(t, pki.leaf("good"), lmtp=True, lmtp_unix=True).start()
    P = smtp.ports
    files = {k: t.write(f"{k}.eml", v) for k, v in AWKWARD.items()}

    with t.case("smtp:// uses STARTTLS when offered, the envelope from the "
                "header, one connection for all messages"):
        names = sorted(files)
        code, ev, out, err = drive(t, f"smtp://127.0.0.1:{P['smtp']}",
                                   [files[n] for n in names],
                                   "-H", "X-Envelope-To,Delivered-To",
                                   "-e", "relay.test")
        expect_equal("exit", code, 0)
        got = smtp.wait_received(len(names))
        for n, r in zip(names, got):
            expect_equal(f"{n}: data", r.data, wire_form(AWKWARD[n]))
            expect_equal(f"{n}: from", r.mail_from, "bounce@example.org")
            expect_equal(f"{n}: to", r.rcpt_tos, ["box@example.net"])
            expect_equal(f"{n}: helo", r.helo, "relay.test")
            expect_equal(f"{n}: tls", r.tls, True)
        expect_equal("one connection", len({r.peer for r in got}), 1)
        expect_line(err, r"TLS with 127\.0\.0\.1:\d+: TLSv1\.3 .*\(certificate "
                    r"not verified\)")
        expect_line(out, r"^end m1 ok smtp:127\.0\.0\.1:\d+#\d+\.1$")

    with t.case("two messages overlapped: the second waits its turn"):
        n0 = len(smtp.received())
        code, ev, out, err = drive(t, f"smtp://127.0.0.1:{P['smtp']}",
                                   [files["dots"], files["bare_lf"]], "-r",
                                   "a@example.net", "-O")
        expect_equal("exit", code, 0)
        held = int(re.search(r"^pending m2 (\d+)$", out, re.M).group(1))
        if held == 0:
            fail(f"m2 was not held back:\n{out}")
        expect_line(out, r"^commit m1 ok$")
        expect_line(out, r"^commit m2 ok$")
        got = smtp.wait_received(n0 + 2)[-2:]
        expect_equal("in order", [r.data for r in got],
                     [wire_form(AWKWARD["dots"]), wire_form(AWKWARD["bare_lf"])])
        expect_equal("one connection", got[0].peer, got[1].peer)

    with t.case("the recipient option when no header has one; the null "
                "sender without Return-Path"):
        n0 = len(smtp.received())
        f = t.write("plain.eml", b"Subject: plain\r\n\r\nhello\r\n")
        code, ev, out, err = drive(t, f"smtp://127.0.0.1:{P['smtp']}", [f],
                                   "-H", "X-Envelope-To", "-r",
                                   "Fallback <fb@example.net>", "-N")
        expect_equal("exit", code, 0)
        r = smtp.wait_received(n0 + 1)[-1]
        expect_equal("to", r.rcpt_tos, ["fb@example.net"])
        expect_equal("from", r.mail_from, "<>")
        expect_equal("no STARTTLS with -N", r.tls, False)

    with t.case("smtp+starttls:// verifies the certificate"):
        n0 = len(smtp.received())
        code, ev, out, err = drive(t, f"smtp+starttls://127.0.0.1:{P['smtp']}",
                                   [files["dots"]], "-r", "a@example.net",
                                   "-c", pki.ca)
        expect_equal("exit", code, 0)
        expect_equal("tls", smtp.wait_received(n0 + 1)[-1].tls, True)
        code, ev, out, err = drive(t, f"smtp+starttls://127.0.0.1:{P['smtp']}",
                                   [files["dots"]], "-r", "a@example.net",
                                   "-c", pki.unknown_ca)
        expect_equal("exit", code, 1)
        expect_line(out, r"^end m1 fail TLS with 127\.0\.0\.1:\d+ failed: "
                    r"unknown CA: issuer CN=mtlib Test Root CA is not trusted$")
        code, ev, out, err = drive(t, f"smtp+starttls://127.0.0.1:{P['smtp']}",
                                   [files["dots"]], "-r", "a@example.net",
                                   "-c", pki.ca, "-n", "other.example")
        expect_line(out, r"^end m1 fail TLS with .*host name mismatch: .*expected "
                    r"other\.example$")
        expect_equal("nothing more arrived", len(smtp.received()), n0 + 1)

    with t.case("smtps:// is TLS from the first byte"):
        n0 = len(smtp.received())
        code, ev, out, err = drive(t, f"smtps://127.0.0.1:{P['smtps']}",
                                   [files["eight_bit"]], "-r", "a@example.net",
                                   "-c", pki.ca)
        expect_equal("exit", code, 0)
        r = smtp.wait_received(n0 + 1)[-1]
        expect_equal("listener", r.listener, "smtps")
        expect_equal("data", r.data, wire_form(AWKWARD["eight_bit"]))

    with t.case("LMTP over TCP and over a unix socket"):
        n0 = len(smtp.received())
        for spec, listener in ((f"lmtp://127.0.0.1:{P['lmtp']}", "lmtp"),
                               (f"lmtp:{smtp.lmtp_socket}", "lmtp_unix")):
            code, ev, out, err = drive(t, spec, [files["bare_lf"]], "-H",
                                       "Delivered-To", "-e", "fetch.test")
            expect_equal(f"{listener}: exit", code, 0)
            n0 += 1
            r = smtp.wait_received(n0)[-1]
            expect_equal("listener", r.listener, listener)
            expect_equal("to", r.rcpt_tos, ["box@example.net"])
            expect_equal("lhlo", r.helo, "fetch.test")
            expect_equal("data", r.data, wire_form(AWKWARD["bare_lf"]))

    with t.case("LMTP: the recipient's own reply after the final dot"):
        spec = f"lmtp:{smtp.lmtp_socket}"
        smtp.set_behaviour(lmtp_replies=["452 4.2.2 mailbox full"])
        code, ev, out, err = drive(t, spec, [files["dots"]], "-r",
                                   "u@example.net", "-R")
        expect_line(out, r"^commit m1 tempfail .*/lmtp\.sock refused the message "
                    r"for <u@example\.net>: 452 4\.2\.2 mailbox full$")
        expect_line(out, r"^recover m1 not_delivered$")
        smtp.set_behaviour(lmtp_replies=["550 5.1.1 no such user"])
        code, ev, out, err = drive(t, spec, [files["dots"]], "-r",
                                   "u@example.net")
        expect_line(out, r"^commit m1 fail .*550 5\.1\.1 no such user$")
        smtp.set_behaviour()

    with t.case("refusals: sender, recipient, data; the session goes on"):
        spec = f"smtp://127.0.0.1:{P['smtp']}"
        smtp.set_behaviour(mail_reply="451 4.3.0 try later")
        code, ev, out, err = drive(t, spec, [files["dots"]], "-H",
                                   "Delivered-To")
        expect_equal("exit", code, 1)
        expect_line(out, r"^end m1 tempfail 127\.0\.0\.1:\d+ refused the "
                    r"sender <bounce@example\.org>: 451 4\.3\.0 try later$")
        smtp.set_behaviour(rcpt_reject={"box@example.net":
                                        "550 5.1.1 unknown user"})
        other = t.write("other.eml", b"Delivered-To: ok@example.net\r\n\r\nx\r\n")
        n0 = len(smtp.received())
        code, ev, out, err = drive(t, spec, [files["dots"], other], "-H",
                                   "Delivered-To", env={"MT_DEBUG": "1"})
        expect_line(out, r"^end m1 fail 127\.0\.0\.1:\d+ refused the "
                    r"recipient <box@example\.net> \(from Delivered-To\): "
                    r"550 5\.1\.1 unknown user$")
        expect_line(out, r"^commit m2 ok$")
        expect_line(err, r"> RSET$")
        expect_equal("m2 arrived", smtp.wait_received(n0 + 1)[-1].rcpt_tos,
                     ["ok@example.net"])
        smtp.set_behaviour(data_reply="554 5.6.0 content rejected")
        code, ev, out, err = drive(t, spec, [files["dots"]], "-r",
                                   "a@example.net", "-R")
        expect_line(out, r"^commit m1 fail 127\.0\.0\.1:\d+ refused the "
                    r"message for <a@example\.net>: 554 5\.6\.0 content "
                    r"rejected$")
        expect_line(out, r"^recover m1 not_delivered$")
        smtp.set_behaviour()

    with t.case("no envelope recipient"):
        code, ev, out, err = drive(t, f"smtp://127.0.0.1:{P['smtp']}",
                                   [files["dots"]], "-H", "X-Envelope-To")
        expect_line(out, r"^end m1 fail no envelope recipient: the message "
                    r"has no usable X-Envelope-To header$")
        code, ev, out, err = drive(t, f"smtp://127.0.0.1:{P['smtp']}",
                                   [files["dots"]])
        expect_line(out, r"^open failed: smtp://127\.0\.0\.1:\d+: no "
                    r"envelope recipient: set a recipient or a header to "
                    r"take it from \(such as Delivered-To\)$")

    with t.case("aborted after end: nothing arrives, recovery agrees"):
        n0 = len(smtp.received())
        code, ev, out, err = drive(t, f"smtp://127.0.0.1:{P['smtp']}",
                                   [files["dots"]], "-r", "a@example.net",
                                   "-a")
        expect_line(out, r"^recover m1 not_delivered$")
        f = t.write("after.eml", b"Subject: after\r\n\r\nx\r\n")
        drive(t, f"smtp://127.0.0.1:{P['smtp']}", [f], "-r", "a@example.net")
        got = smtp.wait_received(n0 + 1)
        expect_equal("only the next one", len(got), n0 + 1)
        expect_equal("subject", got[-1].header("Subject"), "after")

    with t.case("a token from before a restart: sent again, with a warning"):
        code, ev, out, err = drive(t, f"smtp://127.0.0.1:{P['smtp']}", [],
                                   "-r", "a@example.net", "-x",
                                   f"smtp:127.0.0.1:{P['smtp']}#1.1")
        expect_line(out, r"^recover k not_delivered 127\.0\.0\.1:\d+: the "
                    r"server may have accepted the message before mailtunnel "
                    r"stopped; it is sent again and may arrive twice$")
        expect_line(err, r"warning: recovering k: 127\.0\.0\.1")

    with t.case("a host name is resolved without blocking"):
        n0 = len(smtp.received())
        code, ev, out, err = drive(t, f"smtp://localhost:{P['smtp']}/",
                                   [files["dots"]], "-r", "a@example.net")
        expect_equal("exit", code, 0)
        smtp.wait_received(n0 + 1)

    with t.case("nobody listening"):
        port = t.port()
        code, ev, out, err = drive(t, f"smtp://127.0.0.1:{port}",
                                   [files["dots"]], "-r", "a@example.net")
        expect_line(out, rf"^end m1 tempfail cannot connect to 127\.0\.0\.1:"
                    rf"{port} \(127\.0\.0\.1:{port}: Connection refused\)$")
        code, ev, out, err = drive(t, f"lmtp:{t.path('no.sock')}",
                                   [files["dots"]], "-r", "a@example.net")
        expect_line(out, r"^end m1 tempfail cannot connect to .*no\.sock: "
                    r"No such file or directory$")

    with t.case("a 20 MB message streams through in constant memory"):
        line = b"x" * 98 + b"\r\n"
        big = t.write("big.eml", b"Subject: big\r\n\r\n" + line * 200000)
        small = files["dots"]
        n0 = len(smtp.received())
        _, _, out_small, _ = drive(t, f"smtp://127.0.0.1:{P['smtp']}",
                                   [small], "-r", "a@example.net")
        code, ev, out, err = drive(t, f"smtp://127.0.0.1:{P['smtp']}", [big],
                                   "-r", "a@example.net")
        expect_equal("exit", code, 0)
        got = smtp.wait_received(n0 + 2, timeout=30)[-1]
        expect_equal("size", len(got.data), 16 + 200000 * 100)
        rss_small = int(re.search(r"rss_kib (\d+)", out_small).group(1))
        rss_big = int(re.search(r"rss_kib (\d+)", out).group(1))
        if "asan 1" in out:
            print("# RSS not checked: AddressSanitizer's quarantine keeps "
                  "freed memory")
        elif rss_big - rss_small > 3072:
            fail(f"RSS grew by {rss_big - rss_small} KiB for 20 MB")
        if int(re.search(r"drained m1 (\d+)", out).group(1)) < 10:
            fail(f"the driver never had to wait: {out}")
        print(f"# 20 MB via SMTP: RSS {rss_small} KiB -> {rss_big} KiB")

    small_srv = SmtpServer(t, pki.leaf("good"), smtps=False, size_limit=1000,
                           name="smtpd-small").start()
    with t.case("SIZE: a message larger than the server takes is refused "
                "before it is sent"):
        f = t.write("two-k.eml", b"Subject: s\r\n\r\n" + b"y" * 2000 + b"\r\n")
        code, ev, out, err = drive(t, f"smtp://127.0.0.1:"
                                   f"{small_srv.ports['smtp']}", [f], "-r",
                                   "a@example.net")
        expect_line(out, r"^end m1 fail the message \(2016 bytes\) is larger "
                    r"than 127\.0\.0\.1:\d+ accepts \(1000 bytes\)$")


mtlib.run(main)
