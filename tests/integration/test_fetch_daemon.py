#!/usr/bin/python3
"""Fetch services in the configuration file: the daemon runs them on
their schedule beside the tunnels, a reload changes them without losing
or repeating mail, SIGTERM stops them; "mailtunnel fetch -c" runs them
once."""
import glob
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mtlib  # noqa: E402
from mtlib import (Dovecot, Mailtunnel, expect_equal, fail,  # noqa: E402
                   make_message, make_messages, message_id, wait_until)
from mtlib.daemon import binary  # noqa: E402


def maildir_ids(path):
    ids = []
    for f in glob.glob(os.path.join(path, "new", "*")) + \
            glob.glob(os.path.join(path, "cur", "*")):
        with open(f, "rb") as fh:
            for line in fh.read(4096).split(b"\n"):
                if line.lower().startswith(b"message-id:"):
                    ids.append(line.split(b":", 1)[1].strip().decode())
    return sorted(ids)


def main(t):
    pki = t.pki()
    dc = Dovecot(t, pki.leaf("good"), make_messages(5)).start()
    pw = t.write("password", dc.password + "\n")
    os.chmod(pw, 0o600)
    state = t.mkdir("state")
    md1, md2 = t.path("Maildir1"), t.path("Maildir2")
    tport = t.port()

    def conf(maildir, interval="10s", extra=""):
        return f"""debug = info
state = {state}
CAfile = {pki.ca}

[box]
fetch = imaps://{dc.user}@127.0.0.1:{dc.ports['imaps']}
passwordFile = {pw}
deliver = maildir:{maildir}
interval = {interval}
{extra}

[pop]
client = yes
accept = 127.0.0.1:{tport}
connect = 127.0.0.1:{dc.ports['pop3s']}
"""

    with t.case("-t checks a fetch service"):
        path = t.write("check.conf", conf(md1))
        r = t.run([binary(), "-t", path], check=False)
        expect_equal("exit", r.returncode, 0)

    mt = Mailtunnel(t, conf(md1)).start(wait_ports=[tport])
    with t.case("the daemon fetches at start, beside a tunnel"):
        wait_until(lambda: len(maildir_ids(md1)) == 5, 20, "5 messages")
        mt.wait_for_log(r"\[box\] .*5 messages delivered")
    with t.case("new mail is fetched at the next interval, once"):
        dc.add(make_message(5))
        wait_until(lambda: len(maildir_ids(md1)) == 6, 30, "6 messages")
        time.sleep(11)
        expect_equal("ids", maildir_ids(md1),
                     sorted(message_id(i) for i in range(6)))
    with t.case("a reload moves the target; the record of what was "
                "delivered stays"):
        mark = mt.log_mark()
        mt.write_config(conf(md2))
        mt.reload()
        mt.wait_for_log(r"configuration reloaded", since=mark)
        dc.add(make_message(6))
        wait_until(lambda: len(maildir_ids(md2)) == 1, 30,
                   "the new message in the new target")
        expect_equal("new target", maildir_ids(md2), [message_id(6)])
        expect_equal("old target unchanged", len(maildir_ids(md1)), 6)
    with t.case("SIGTERM: exit 0"):
        expect_equal("exit", mt.stop(), 0)

    md3 = t.path("Maildir3")
    with t.case("fetch -c CONFIG SERVICE runs it once and exits 0"):
        path = t.write("once.conf", conf(md3).replace(
            f"state = {state}", f"state = {t.mkdir('state2')}"))
        r = t.run([binary(), "fetch", "-c", path, "box"], check=False)
        expect_equal("exit", r.returncode, 0)
        expect_equal("ids", maildir_ids(md3),
                     sorted(message_id(i) for i in range(7)))
    with t.case("fetch -c with an unknown service name: 78"):
        r = t.run([binary(), "fetch", "-c", path, "nosuch"], check=False)
        expect_equal("exit", r.returncode, 78)
        if b"has no fetch service [nosuch]" not in r.stderr:
            fail(r.stderr.decode())
    with t.case("fetch -c with a wrong password: 77"):
        bad = t.write("bad-password", "wrong\n")
        os.chmod(bad, 0o600)
        path = t.write("bad.conf", conf(t.path("Maildir4")).replace(
            f"passwordFile = {pw}", f"passwordFile = {bad}").replace(
            f"state = {state}", f"state = {t.mkdir('state3')}"))
        r = t.run([binary(), "fetch", "-c", path], check=False)
        expect_equal("exit", r.returncode, 77)
    with t.case("debug in a fetch section: its own level; -v raises it"):
        def run_with(extra, *args):
            path = t.write("debug.conf", conf(t.path("Maildir5"),
                                              extra=extra).replace(
                f"state = {state}", f"state = {t.mkdir('state5')}"))
            r = t.run([binary(), "fetch", "-c", path, *args, "box"],
                      check=False)
            expect_equal("exit", r.returncode, 0)
            return r.stderr.decode()
        err = run_with("debug = debug")
        if "debug: [box] C: A" not in err or "<redacted>" not in err:
            fail(f"no protocol trace at debug = debug:\n{err}")
        if dc.password in err:
            fail("the password reached the trace")
        err = run_with("debug = err")
        if "[box]" in err:
            fail(f"[box] logged below err:\n{err}")
        if "[box]" not in run_with("debug = err", "-v"):
            fail("-v did not raise the level of [box]")
    with t.case("OCSPaia in a fetch service: good fetches, revoked is "
                "refused (75), nothing delivered"):
        rport = t.port()
        url = f"http://127.0.0.1:{rport}/"
        good = pki.issue("fetch_ocsp_good", ocsp=url)
        revoked = pki.issue("fetch_ocsp_revoked", ocsp=url)
        pki.revoke(revoked)
        pki.ocsp_responder(t, rport)

        def fetch_with(cert, maildir):
            dc.set_cert(cert)
            path = t.write("ocsp.conf", conf(maildir, extra="OCSPaia = yes")
                           .replace(f"state = {state}",
                                    f"state = {t.mkdir('state-' + cert.name)}"))
            return t.run([binary(), "fetch", "-c", path, "-v", "box"],
                         check=False)
        md6, md7 = t.path("Maildir6"), t.path("Maildir7")
        r = fetch_with(good, md6)
        expect_equal("exit", r.returncode, 0)
        if b"OCSP check of 127.0.0.1 [127.0.0.1:" not in r.stderr or \
                b"1 certificate good" not in r.stderr:
            fail(r.stderr.decode())
        expect_equal("delivered", len(maildir_ids(md6)), 7)
        r = fetch_with(revoked, md7)
        expect_equal("exit", r.returncode, 75)
        if b"refused: certificate revoked: " not in r.stderr or \
                b"(keyCompromise)" not in r.stderr:
            fail(r.stderr.decode())
        expect_equal("delivered", maildir_ids(md7), [])
        dc.set_cert(pki.leaf("good"))


mtlib.run(main)
