#!/usr/bin/python3
"""mailtunnel fetch into the targets that hand messages on: a command
(mda:), an SMTP server and an LMTP server on a unix socket. Every message
arrives once with the envelope asked for; a command that says "try
again" (75) or refuses a message keeps it on the server for the next run;
a server that answers 4xx does the same."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mtlib
from mtlib import Dovecot, SmtpServer, expect_equal, fail, make_messages
from fetchlib import Fetch, expect_rc, message_ids, summary


def files(path):
    out = []
    for name in sorted(os.listdir(path)):
        with open(os.path.join(path, name), "rb") as fh:
            out.append(fh.read())
    return out


def main(t):
    pki = t.pki()
    msgs = make_messages(40, sizes=(1500, 20000, 200000), seed=11)
    want = sorted(message_ids(msgs))
    dc = Dovecot(t, pki.leaf("good"), msgs).start()

    with t.case("mda: each message once on a command's stdin"):
        f = Fetch(t, pki, dc)
        out = t.mkdir("mda-out")
        cmd = f'mda:cat > "{out}/$MAILTUNNEL_KEY"'
        r = f.run("imaps", cmd, "--recipient", "box@internal.test")
        expect_rc(r, 0)
        expect_equal("delivered", sorted(message_ids(files(out))), want)
        r = f.run("imaps", cmd, "--recipient", "box@internal.test")
        expect_rc(r, 0)
        expect_equal("summary of a second run", summary(r)[:2], (0, 0))

    with t.case("mda: 75 keeps the message for the next run; other "
                "refusals too"):
        f = Fetch(t, pki, dc)
        out = t.mkdir("mda-flaky")
        flaky = t.write("flaky.sh", "#!/bin/sh\n"
                        f"out={out}\n"
                        'data=$(cat)\n'
                        'case "$data" in\n'
                        '  *"mtlib-000003@"*) exit 75 ;;\n'
                        '  *"mtlib-000004@"*) exit 1 ;;\n'
                        'esac\n'
                        'printf "%s" "$data" > "$out/$MAILTUNNEL_KEY"\n',
                        mode=0o755)
        r = f.run("pop3s", f"mda:{flaky}", "--recipient", "box@internal.test")
        expect_rc(r, 75)
        got = message_ids(files(out))
        if b"<mtlib-000003@mail.test>" in got or \
                b"<mtlib-000004@mail.test>" in got:
            fail("a refused message was counted as delivered")
        r = f.run("pop3s", f"mda:cat > '{out}'/$MAILTUNNEL_KEY",
                  "--recipient", "box@internal.test")
        expect_rc(r, 0)
        expect_equal("delivered after the retry",
                     sorted(message_ids(files(out))), want)

    with t.case("smtp: each message once, to the configured recipient"):
        smtp = SmtpServer(t, pki.leaf("good"), smtps=False).start()
        f = Fetch(t, pki, dc)
        target = f"smtp://127.0.0.1:{smtp.ports['smtp']}"
        r = f.run("imaps", target, "--recipient", "box@internal.test")
        expect_rc(r, 0)
        got = smtp.wait_received(len(msgs))
        expect_equal("received", sorted(message_ids([m.data for m in got])),
                     want)
        for m in got:
            expect_equal("recipients", m.rcpt_tos, ["box@internal.test"])
        r = f.run("imaps", target, "--recipient", "box@internal.test")
        expect_rc(r, 0)
        expect_equal("received after a second run", len(smtp.received()),
                     len(msgs))

    with t.case("smtp: 451 keeps the messages on the server"):
        smtp = SmtpServer(t, pki.leaf("good"), smtps=False,
                          name="smtpd-busy").start()
        smtp.set_behaviour(data_reply="451 4.3.0 try later")
        f = Fetch(t, pki, dc)
        target = f"smtp://127.0.0.1:{smtp.ports['smtp']}"
        r = f.run("pop3s", target, "--recipient", "box@internal.test")
        expect_rc(r, 75)
        smtp.set_behaviour()
        r = f.run("pop3s", target, "--recipient", "box@internal.test")
        expect_rc(r, 0)
        got = smtp.wait_received(len(msgs))
        expect_equal("received", sorted(message_ids([m.data for m in got])),
                     want)

    with t.case("lmtp on a unix socket, recipient from Delivered-To"):
        lmtp = SmtpServer(t, None, smtp=False, smtps=False, lmtp=True,
                          lmtp_unix=True, name="lmtpd").start()
        f = Fetch(t, pki, dc)
        r = f.run("imaps", f"lmtp:{lmtp.lmtp_socket}", "--recipient-header",
                  "Delivered-To", "--recipient", "fallback@internal.test")
        expect_rc(r, 0)
        got = lmtp.wait_received(len(msgs))
        expect_equal("received", sorted(message_ids([m.data for m in got])),
                     want)
        expect_equal("recipients", sorted(set(tuple(m.rcpt_tos)
                                              for m in got)),
                     [("fallback@internal.test",)])


mtlib.run(main)
