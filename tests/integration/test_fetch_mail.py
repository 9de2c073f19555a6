#!/usr/bin/python3
"""mailtunnel fetch against a real Dovecot over POP3S, IMAPS and both
STARTTLS ports: a few hundred messages of mixed sizes plus awkward ones
(a 20 MB message, bare LF line ends, lines starting with "." and "From ",
8-bit content, no final newline, an empty body), delivered byte for byte
(modulo each target's line-end policy) into maildir, dir and mbox; a
second run finds nothing new; memory does not grow with message size."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mtlib
from mtlib import Dovecot, expect_equal, fail, make_messages
from fetchlib import (Fetch, awkward_messages, big_message, dir_messages,
                      expect_rc, maildir_messages, mbox_messages,
                      message_ids, peak_rss_kib, summary, to_crlf, to_lf)

BIG = 20 * 1024 * 1024


def check_content(got, want_raw, proto, target):
    """Compare one delivered message with what was put on the server.

    Dovecot sends every line with CRLF. maildir and mbox store LF; dir
    keeps the bytes as received. POP3 ends the last line of a message
    that had no line end (RFC 1939 needs it before the "."); IMAP sends
    the message exactly."""
    want = to_crlf(want_raw)
    if proto.startswith("pop3") and not want.endswith(b"\r\n"):
        want += b"\r\n"
    if target != "dir":
        want = to_lf(want)
    if got != want:
        n = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b),
                 min(len(got), len(want)))
        fail(f"{proto} into {target}: content differs at byte {n} (got "
             f"{len(got)} bytes, want {len(want)}): {got[n:n + 40]!r} vs "
             f"{want[n:n + 40]!r}")


def delivered(target, path):
    if target == "maildir":
        return maildir_messages(path)
    if target == "dir":
        return dir_messages(path)
    return mbox_messages(path)


def main(t):
    pki = t.pki()
    plain = make_messages(300, sizes=(1500, 4000, 20000, 90000), seed=7)
    awkward = awkward_messages()
    big = big_message(999999, BIG)
    raws = plain + [raw for _, raw in awkward] + [big]
    by_id = dict(zip(message_ids(raws), raws))
    if None in by_id or len(by_id) != len(raws):
        fail("test messages need distinct Message-IDs")
    dc = Dovecot(t, pki.leaf("good"), raws).start()

    cases = [("pop3s", "maildir"), ("imaps", "dir"), ("pop3", "mbox"),
             ("imap", "maildir")]
    rss = {}
    for proto, target in cases:
        with t.case(f"{proto} into {target}: everything, byte for byte"):
            f = Fetch(t, pki, dc)
            path = t.path(f"{proto}-{target}")
            argv = f.argv(f.url(proto), f"{target}:{path}")
            rc, rss[proto], err = peak_rss_kib(argv)
            if rc != 0:
                fail(f"exit {rc}:\n{err[-3000:]}")
            got = delivered(target, path)
            ids = message_ids(got)
            expect_equal("delivered messages", len(got), len(raws))
            expect_equal("distinct Message-IDs", len(set(ids)), len(raws))
            for raw, mid in zip(got, ids):
                if mid not in by_id:
                    fail(f"unexpected message {mid!r}")
                check_content(raw, by_id[mid], proto, target)
        with t.case(f"{proto} into {target}: a second run finds nothing"):
            r = f.run(proto, f"{target}:{path}")
            expect_rc(r, 0)
            expect_equal("summary (delivered, new, listed)", summary(r),
                         (0, 0, len(raws)))
            expect_equal("messages", len(delivered(target, path)), len(raws))

    for proto in ("pop3s", "imaps"):
        with t.case(f"{proto}: the 20 MB message costs no memory"):
            # The same run without the big message (skipped by size).
            f = Fetch(t, pki, dc)
            path = t.path(f"{proto}-small")
            rc, base, err = peak_rss_kib(f.argv(
                f.url(proto), f"maildir:{path}", "--max-size", "1M"))
            if rc != 0:
                fail(f"exit {rc}:\n{err[-3000:]}")
            if "more than the maximum of 1048576: skipped" not in err:
                fail(f"the big message was not skipped:\n{err[-2000:]}")
            grown = rss[proto] - base
            print(f"{proto}: peak RSS {base} KiB without the 20 MB message, "
                  f"{rss[proto]} KiB with it (+{grown} KiB)")
            if grown > 4096:
                fail(f"peak RSS grew by {grown} KiB with a 20 MB message")

    with t.case("--help names every option"):
        r = t.run([mtlib.daemon.binary(), "fetch", "--help"])
        out = r.stdout.decode()
        for opt in ("--deliver", "--password-file", "--password-command",
                    "--token-command", "--ca-file", "--state", "--delete",
                    "--keep", "--max-size", "--first-run", "--folder"):
            if opt not in out:
                fail(f"--help does not mention {opt}")


mtlib.run(main)
