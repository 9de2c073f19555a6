#!/usr/bin/python3
"""The policies of mailtunnel fetch against a real Dovecot: the maximum
size (skip, never half-deliver), first run "new", deletion right after
delivery or a while after it, several IMAP folders, a UIDVALIDITY change,
and a second fetch of the same account while one runs."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mtlib
from mtlib import Dovecot, expect_equal, fail, make_message, make_messages
from fetchlib import (Fetch, expect_rc, maildir_messages, message_ids,
                      summary)


def ids(path):
    return sorted(message_ids(maildir_messages(path)))


def main(t):
    pki = t.pki()
    small = make_messages(6, sizes=(2000,), seed=3)
    big = make_message(500, 300000)

    for proto in ("pop3s", "imaps"):
        with t.case(f"{proto}: --max-size skips the big message, whole"):
            dc = Dovecot(t, pki.leaf("good"), small + [big],
                         name=f"dc-size-{proto}").start()
            f = Fetch(t, pki, dc)
            path = t.path(f"size-{proto}")
            r = f.run(proto, f"maildir:{path}", "--max-size", "100k")
            expect_rc(r, 0)
            if "more than the maximum of 102400: skipped (it stays on the " \
                    "server)" not in r.stderr:
                fail(r.stderr)
            expect_equal("delivered", ids(path),
                         sorted(message_ids(small)))
            expect_equal("staging copies", os.listdir(path + "/tmp"), [])
            r = f.run(proto, f"maildir:{path}")
            expect_rc(r, 0)
            expect_equal("delivered once the limit is gone", ids(path),
                         sorted(message_ids(small + [big])))
            dc.stop()

    for proto in ("pop3s", "imaps"):
        with t.case(f"{proto}: --first-run new takes only later mail"):
            dc = Dovecot(t, pki.leaf("good"), small,
                         name=f"dc-new-{proto}").start()
            f = Fetch(t, pki, dc)
            path = t.path(f"new-{proto}")
            r = f.run(proto, f"maildir:{path}", "--first-run", "new")
            expect_rc(r, 0)
            if "first run: the 6 messages" not in r.stderr:
                fail(r.stderr)
            expect_equal("delivered at the first run", ids(path), [])
            later = [make_message(100 + i) for i in range(2)]
            for raw in later:
                dc.add(raw)
            r = f.run(proto, f"maildir:{path}", "--first-run", "new")
            expect_rc(r, 0)
            expect_equal("delivered later", ids(path),
                         sorted(message_ids(later)))
            dc.stop()

    for proto in ("pop3s", "imaps"):
        with t.case(f"{proto}: --delete deletes what was delivered"):
            dc = Dovecot(t, pki.leaf("good"), small,
                         name=f"dc-del-{proto}").start()
            f = Fetch(t, pki, dc)
            path = t.path(f"del-{proto}")
            r = f.run(proto, f"maildir:{path}", "--delete")
            expect_rc(r, 0)
            expect_equal("delivered", ids(path), sorted(message_ids(small)))
            expect_equal("left on the server", dc.count(), 0)
            if "6 deleted on the server" not in r.stderr:
                fail(r.stderr)
            dc.stop()

    for proto in ("pop3s", "imaps"):
        with t.case(f"{proto}: --keep 3s deletes only once they are 3 s "
                    f"old"):
            dc = Dovecot(t, pki.leaf("good"), small,
                         name=f"dc-keep-{proto}").start()
            f = Fetch(t, pki, dc)
            path = t.path(f"keep-{proto}")
            r = f.run(proto, f"maildir:{path}", "--keep", "3s")
            expect_rc(r, 0)
            expect_equal("left on the server at once", dc.count(), len(small))
            time.sleep(3.5)
            r = f.run(proto, f"maildir:{path}", "--keep", "3s")
            expect_rc(r, 0)
            expect_equal("left on the server later", dc.count(), 0)
            expect_equal("delivered", ids(path), sorted(message_ids(small)))
            dc.stop()

    dc = Dovecot(t, pki.leaf("good"), small, name="dc-imap").start()
    archive = [make_message(200 + i) for i in range(3)]
    dc.doveadm("mailbox", "create", "-u", dc.user, "Entw\u00fcrfe")
    for raw in archive:
        dc.add(raw, mailbox="Entw\u00fcrfe")

    with t.case("imaps: several folders, one with a non-ASCII name"):
        f = Fetch(t, pki, dc)
        path = t.path("folders")
        r = f.run("imaps", f"maildir:{path}", "--folder", "INBOX",
                  "--folder", "Entw\u00fcrfe")
        expect_rc(r, 0)
        expect_equal("delivered", ids(path),
                     sorted(message_ids(small + archive)))
        r = f.run("imaps", f"maildir:{path}", "--folder", "INBOX",
                  "--folder", "Entw\u00fcrfe")
        expect_rc(r, 0)
        expect_equal("summary (delivered, new, listed)", summary(r),
                     (0, 0, len(small) + len(archive)))
        r = f.run("imaps", f"maildir:{path}", "--folder", "Nowhere")
        expect_rc(r, 78)
        if "cannot open folder Nowhere" not in r.stderr:
            fail(r.stderr)

    with t.case("imaps: a UIDVALIDITY change delivers nothing twice "
                "silently"):
        anon = (b"From: a@b.test\r\nSubject: no id\r\n\r\nno Message-ID "
                b"here\r\n")
        dc.add(anon)
        f = Fetch(t, pki, dc)
        path = t.path("uidvalidity")
        r = f.run("imaps", f"maildir:{path}")
        expect_rc(r, 0)
        expect_equal("delivered", len(maildir_messages(path)), len(small) + 1)
        dc.doveadm("mailbox", "update", "-u", dc.user, "--uid-validity",
                   "12345", "INBOX")
        r = f.run("imaps", f"maildir:{path}")
        expect_rc(r, 0)
        if "UIDVALIDITY changed" not in r.stderr or \
                f"{len(small)} recognised" not in r.stderr or \
                "has no Message-ID: after the UIDVALIDITY change it is " \
                "delivered again" not in r.stderr:
            fail(r.stderr)
        expect_equal("messages after the change", len(maildir_messages(path)),
                     len(small) + 2)
        r = f.run("imaps", f"maildir:{path}")
        expect_rc(r, 0)
        expect_equal("summary afterwards", summary(r)[:2], (0, 0))

    with t.case("a second fetch of the same account waits for the first"):
        f = Fetch(t, pki, dc)
        path = t.path("concurrent")
        slow = f"sleep 1.5; printf '%s\\n' '{dc.password}'"
        first = f.spawn("imaps", f"maildir:{path}", "--password-command",
                        slow, secret=False, name="first")
        time.sleep(0.5)
        r = f.run("imaps", f"maildir:{path}")
        expect_equal("first exit", first.wait(20), 0)
        expect_rc(r, 0, "second fetch")
        if "another fetch of this account is running; waiting for it" \
                not in r.stderr:
            fail(r.stderr)
        expect_equal("summary of the second", summary(r)[:2], (0, 0))
        got = maildir_messages(path)
        expect_equal("delivered once each", len(set(got)), len(got))
        expect_equal("delivered", len(got), dc.count())


mtlib.run(main)
