#!/usr/bin/python3
"""The exactly-once proof: kill -9 the fetcher again and again at random
moments of its run, over POP3 and IMAP, with and without deletion, into
every file target; then let one run finish. Every message on the server
must have been delivered exactly once (by Message-ID), and no message may
ever be missing from the server without having been delivered."""
import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mtlib
from mtlib import Dovecot, expect_equal, fail, make_messages
from fetchlib import (Fetch, dir_messages, expect_rc, maildir_messages,
                      mbox_messages, message_ids)

KILLS = 15                      # per scenario; 4 scenarios
MESSAGES = 300

SCENARIOS = [
    ("pop3s", "maildir", False),
    ("pop3s", "dir", True),
    ("imaps", "mbox", False),
    ("imaps", "maildir", True),
]


def delivered_ids(target, path):
    reader = {"maildir": maildir_messages, "dir": dir_messages,
              "mbox": mbox_messages}[target]
    return message_ids(reader(path))


def check_nothing_lost(dc, want, target, path, when):
    """Whatever left the server must have been delivered."""
    on_server = set(i.encode() for i in dc.message_ids())
    got = set(delivered_ids(target, path))
    lost = set(want) - on_server - got
    if lost:
        fail(f"{when}: {len(lost)} messages deleted on the server but never "
             f"delivered, e.g. {sorted(lost)[:3]}")


def calibrate(t, pki, dc, proto):
    """Seconds of a run with nothing to do, and of a whole first run."""
    f = Fetch(t, pki, dc)
    path = t.path(f"calibrate-{proto}")
    took = []
    for _ in range(2):
        t0 = time.monotonic()
        expect_rc(f.run(proto, f"maildir:{path}"), 0, "calibration")
        took.append(time.monotonic() - t0)
    return took[1], took[0]


def scenario(t, pki, proto, target, delete, rnd):
    msgs = make_messages(MESSAGES, sizes=(600, 3000, 12000, 40000),
                         seed=rnd.randrange(1 << 30))
    want = message_ids(msgs)
    dc = Dovecot(t, pki.leaf("good"), msgs,
                 name=f"dovecot-{proto}-{target}").start()
    f = Fetch(t, pki, dc)
    path = t.path(f"{proto}-{target}-{'delete' if delete else 'keep'}")
    extra = ["--delete"] if delete else []
    start, full = calibrate(t, pki, dc, proto)
    kills = attempts = mid = settled = 0
    # Each attempt is killed at a random moment: in its start-up, or some
    # way into its deliveries (an eighth of the work on average), so the
    # kills fall all along the run and each leaves work for the next.
    share = max(full - start, 0.01) / 4
    before = 0
    while kills < KILLS:
        attempts += 1
        p = f.spawn(proto, f"{target}:{path}", *extra,
                    name=f"fetch-{proto}-{target}")
        if before < MESSAGES:
            time.sleep(start * rnd.uniform(0.5, 1.0) + rnd.uniform(0, share))
        else:
            # All delivered: what is left (deletion, nothing new) is short.
            time.sleep(rnd.uniform(0, start))
        if p.poll() is None:
            p.signal(signal.SIGKILL)
            p.wait(10)
            kills += 1
        elif p.returncode != 0:
            fail(f"attempt {attempts} exited {p.returncode}:\n"
                 f"{p.tail(30)}")
        if "interrupted in an earlier run" in p.log_text():
            settled += 1
        now = len(delivered_ids(target, path))
        if 0 < now < MESSAGES and now != before:
            mid += 1
        before = now
        if delete:
            check_nothing_lost(dc, want, target, path,
                               f"after attempt {attempts}")
        if attempts > 10 * KILLS:
            fail("the runs end too fast to be killed")
    r = f.run(proto, f"{target}:{path}", *extra)
    expect_rc(r, 0, "the run after the kills")
    if "interrupted in an earlier run" in r.stderr:
        settled += 1
    got = delivered_ids(target, path)
    dups = sorted(i for i in set(got) if got.count(i) > 1)
    if dups:
        fail(f"{len(dups)} messages delivered twice, e.g. {dups[:3]}")
    missing = sorted(set(want) - set(got))
    if missing:
        fail(f"{len(missing)} messages never delivered, e.g. {missing[:3]}")
    expect_equal("delivered", len(got), len(want))
    if delete:
        expect_equal("messages left on the server", dc.count(), 0)
    else:
        expect_equal("messages left on the server", dc.count(), len(want))
    r = f.run(proto, f"{target}:{path}", *extra)
    expect_rc(r, 0, "one more run")
    expect_equal("delivered after one more run",
                 len(delivered_ids(target, path)), len(want))
    print(f"{proto} into {target}{' with deletion' if delete else ''}: "
          f"{kills} kills in {attempts} attempts, {mid} with progress, "
          f"{settled} between an intent and its done; {len(got)} messages "
          f"each delivered once")
    dc.stop()
    return kills


def main(t):
    pki = t.pki()
    seed = int(os.environ.get("MT_SEED", str(int(time.time()))))
    print(f"seed {seed} (MT_SEED={seed} repeats this run)")
    rnd = random.Random(seed)
    total = 0
    for proto, target, delete in SCENARIOS:
        name = (f"{proto} into {target}, "
                f"{'deleting' if delete else 'keeping'}: killed "
                f"{KILLS} times, every message exactly once")
        with t.case(name):
            total += scenario(t, pki, proto, target, delete, rnd)
    print(f"{total} kills in all")


mtlib.run(main)
