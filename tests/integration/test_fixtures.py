#!/usr/bin/python3
"""Self-test of mtlib: every fixture against real standard-library clients.

Proves the PKI (each bad certificate is refused by Python's ssl for the
expected reason), Dovecot, the SMTP/LMTP server, openssl s_server, the
Python TLS servers, the scripted server, the daemon runner (on a stand-in,
since this tests the runner and not mailtunnel), process cleanup on every
exit path, and the network namespace helper.
"""
import hashlib
import imaplib
import os
import poplib
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mtlib  # noqa: E402
from mtlib import (Dovecot, Mailtunnel, Namespace, SServer,  # noqa: E402
                   ScriptedServer, SmtpServer, TestEnv, TestFailure,
                   check_config, expect_equal, expect_raises, fail,
                   make_messages, pattern_bytes)
from mtlib import script as S  # noqa: E402
from mtlib import tlsserver  # noqa: E402
from mtlib.peers import PYTHON  # noqa: E402

HERE = os.path.abspath(__file__)
STANDIN = os.path.join(os.path.dirname(HERE), "mtlib", "standin_daemon.py")


def client_ctx(pki):
    return ssl.create_default_context(cafile=pki.ca)


def tls_connect(ctx, port, hostname="mail.test", host="127.0.0.1", **kw):
    sock = socket.create_connection((host, port), timeout=10)
    return ctx.wrap_socket(sock, server_hostname=hostname, **kw)


# --- PKI -----------------------------------------------------------------

def check_pki(t, pki):
    ctx = client_ctx(pki)
    for name, leaf in pki.all_variants().items():
        verdict = f"refused: {leaf.expect}" if leaf.expect else "accepted"
        with t.case(f"pki: {name} is {verdict}"):
            srv = tlsserver.echo_server(t, leaf)
            host = "127.0.0.1" if name == "dns_only" else "mail.test"
            try:
                with tls_connect(ctx, srv.port, host) as s:
                    s.sendall(b"ping\n")
                    got = s.recv(100)
            except ssl.SSLCertVerificationError as e:
                if leaf.expect is None:
                    fail(f"good certificate refused: {e}")
                expect_equal("verify code", e.verify_code, leaf.expect_code)
                if leaf.expect.lower() not in e.verify_message.lower():
                    fail(f"reason {e.verify_message!r} lacks {leaf.expect!r}")
            else:
                if leaf.expect is not None:
                    fail(f"accepted, want refusal ({leaf.expect})")
                expect_equal("echo", got, b"ping\n")
            srv.stop()
    with t.case("pki: the good certificate verifies by IP address too"):
        srv = tlsserver.echo_server(t, pki.leaf("good"))
        with tls_connect(ctx, srv.port, "127.0.0.1") as s:
            s.sendall(b"x")
            expect_equal("echo", s.recv(1), b"x")
    with t.case("pki: without the test CA the good certificate is refused"):
        srv = tlsserver.echo_server(t, pki.leaf("good"))
        e = expect_raises(ssl.SSLCertVerificationError, tls_connect,
                          ssl.create_default_context(), srv.port)
        expect_equal("verify code", e.verify_code, 20)
    with t.case("pki: chains and weak keys are what the variants claim"):
        for name, count in (("good", 2), ("missing_intermediate", 1),
                            ("self_signed", 1), ("unknown_ca", 2)):
            with open(pki.leaf(name).chain) as f:
                expect_equal(f"{name} chain length",
                             f.read().count("BEGIN CERTIFICATE"), count)
        for name in ("rsa1024", "sha1"):
            plain = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            expect_raises(ssl.SSLError, plain.load_cert_chain,
                          pki.leaf(name).chain, pki.leaf(name).key)


# --- Dovecot -------------------------------------------------------------

def check_dovecot(t, pki):
    msgs = make_messages(4, sizes=(500, 3000, 70000))
    # 127.0.0.2: Dovecot refuses plaintext login only from another address.
    dc = Dovecot(t, pki.leaf("good"), msgs, listen="127.0.0.2").start()
    ctx = client_ctx(pki)
    with t.case("dovecot: POP3S with verification, messages in order"):
        p = poplib.POP3_SSL(dc.host, dc.ports["pop3s"], context=ctx)
        p.user(dc.user)
        p.pass_(dc.password)
        expect_equal("stat", p.stat()[0], 4)
        for i, raw in enumerate(msgs):
            lines = p.retr(i + 1)[1]
            expect_equal(f"message {i + 1}", b"\r\n".join(lines) + b"\r\n", raw)
        p.dele(1)
        p.quit()
        expect_equal("count after DELE", dc.count(), 3)
    with t.case("dovecot: POP3 STLS; USER before TLS is refused"):
        p = poplib.POP3(dc.host, dc.ports["pop3"], timeout=10)
        e = expect_raises(poplib.error_proto, p.user, dc.user)
        if b"Plaintext authentication disallowed" not in e.args[0]:
            fail(f"refusal: {e}")
        p.stls(ctx)
        p.user(dc.user)
        p.pass_(dc.password)
        expect_equal("uidl", len(p.uidl()[1]), 3)
        p.quit()
    with t.case("dovecot: IMAPS and IMAP STARTTLS, helpers see changes"):
        m = imaplib.IMAP4_SSL(dc.host, dc.ports["imaps"], ssl_context=ctx)
        m.login(dc.user, dc.password)
        m.select("INBOX")
        m.store(b"1", "+FLAGS", "\\Seen")
        m.logout()
        dc.add(b"Message-ID: <added@mail.test>\r\nSubject: x\r\n\r\nbody\r\n")
        ids = dc.message_ids()
        expect_equal("ids", ids, [f"<mtlib-{i:06d}@mail.test>" for i in (1, 2, 3)]
                     + ["<added@mail.test>"])
        if "\\Seen" not in dc.flags()[2]:
            fail(f"flags: {dc.flags()}")
        m = imaplib.IMAP4(dc.host, dc.ports["imap"], timeout=10)
        m.starttls(ctx)
        m.login(dc.user, dc.password)
        typ, data = m.select("INBOX")
        expect_equal("exists", data, [b"4"])
        m.logout()
    with t.case("dovecot: set_cert() serves a new certificate after reload"):
        dc.set_cert(pki.leaf("expired"))
        e = expect_raises(ssl.SSLCertVerificationError, poplib.POP3_SSL,
                          dc.host, dc.ports["pop3s"], context=ctx)
        expect_equal("code", e.verify_code, 10)
        dc.set_cert(pki.leaf("good"))
        poplib.POP3_SSL(dc.host, dc.ports["pop3s"], context=ctx).quit()
    with t.case("dovecot: raw_messages() and expunge_all()"):
        raws = dc.raw_messages()
        expect_equal("first raw", raws[0], msgs[1])
        dc.expunge_all()
        expect_equal("count", dc.count(), 0)
    with t.case("dovecot: stop closes every port"):
        dc.stop()
        if any(mtlib.is_listening(p) for p in dc.ports.values()):
            fail("still listening")
    with t.case("dovecot: serves a bad certificate when told to (expired, rsa1024)"):
        for name in ("expired", "rsa1024"):
            leaf = pki.leaf(name)
            bad = Dovecot(t, leaf, protocols=("pop3",)).start()
            e = expect_raises(ssl.SSLCertVerificationError, poplib.POP3_SSL,
                              "127.0.0.1", bad.ports["pop3s"], context=ctx)
            expect_equal(name, e.verify_code, leaf.expect_code)
            bad.stop(clean=False)


# --- missing peers ---------------------------------------------------------

def check_peers(t):
    with t.case("peers: a missing package fails naming apt-get install"):
        e = expect_raises(TestFailure, mtlib.require, "openssl",
                          "mtlib-no-such-package")
        if not str(e).endswith("apt-get install mtlib-no-such-package"):
            fail(f"message: {e}")
        probe = mtlib.peers.PROBES["stunnel4"]
        mtlib.peers.PROBES["stunnel4"] = ["/nonexistent/stunnel4"]
        mtlib.peers._checked.pop("stunnel4", None)
        try:
            e = expect_raises(TestFailure, mtlib.require, "stunnel4")
            if "/nonexistent/stunnel4 not found" not in str(e):
                fail(f"message: {e}")
        finally:
            mtlib.peers.PROBES["stunnel4"] = probe
            mtlib.peers._checked.pop("stunnel4", None)
        mtlib.require("stunnel4", "python3-aiosmtpd", "dovecot-pop3d")


# --- SMTP / LMTP ---------------------------------------------------------

def check_smtp(t, pki):
    ctx = client_ctx(pki)
    srv = SmtpServer(t, pki.leaf("good"), auth=("mailer", "smtp-Pass9")).start()
    with t.case("smtp: SMTPS with AUTH, envelope stored"):
        with smtplib.SMTP_SSL("127.0.0.1", srv.ports["smtps"], context=ctx,
                              timeout=10) as s:
            s.login("mailer", "smtp-Pass9")
            s.sendmail("a@example.org", ["b@mail.test", "c@mail.test"],
                       b"Subject: one\r\n\r\nhello\r\n")
        [m] = srv.wait_received(1)
        expect_equal("envelope", (m.mail_from, m.rcpt_tos, m.tls, m.auth_user,
                                  m.listener),
                     ("a@example.org", ["b@mail.test", "c@mail.test"], True,
                      "mailer", "smtps"))
        expect_equal("subject", m.header("Subject"), "one")
    with t.case("smtp: no AUTH before STARTTLS, AUTH after it"):
        with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as s:
            s.ehlo()
            if s.has_extn("auth") or not s.has_extn("starttls"):
                fail(f"features before TLS: {s.esmtp_features}")
            s.starttls(context=ctx)
            s.ehlo()
            s.login("mailer", "smtp-Pass9")
            s.sendmail("a@example.org", ["d@mail.test"], b"Subject: two\r\n\r\nx\r\n")
        m = srv.wait_received(2)[1]
        expect_equal("starttls message", (m.tls, m.listener), (True, "smtp"))
    with t.case("smtp: wrong password and run-time refusal"):
        with smtplib.SMTP_SSL("127.0.0.1", srv.ports["smtps"], context=ctx) as s:
            expect_raises(smtplib.SMTPAuthenticationError, s.login, "mailer",
                          "wrong")
        srv.set_behaviour(data_reply="451 4.3.0 try later")
        with smtplib.SMTP_SSL("127.0.0.1", srv.ports["smtps"], context=ctx) as s:
            e = expect_raises(smtplib.SMTPDataError, s.sendmail,
                              "a@example.org", ["b@mail.test"], b"x\r\n")
            expect_equal("code", e.smtp_code, 451)
        srv.set_behaviour()
        expect_equal("stored", len(srv.received()), 2)
    with t.case("smtp: require_starttls and auth_required are enforced"):
        strict = SmtpServer(t, pki.leaf("good"), auth=("u", "p"),
                            auth_required=True, require_starttls=True,
                            smtps=False, name="smtpd-strict").start()
        with smtplib.SMTP("127.0.0.1", strict.ports["smtp"], timeout=10) as s:
            s.ehlo()
            expect_equal("MAIL before TLS", s.mail("a@example.org")[0], 530)
            s.starttls(context=ctx)
            s.ehlo()
            expect_equal("MAIL before AUTH", s.mail("a@example.org")[0], 530)
            s.login("u", "p")
            expect_equal("MAIL after AUTH", s.mail("a@example.org")[0], 250)
    with t.case("lmtp: TCP and unix socket, per-recipient replies"):
        lm = SmtpServer(t, None, smtp=False, smtps=False, lmtp=True,
                        lmtp_unix=True, name="lmtpd").start()
        with smtplib.LMTP("127.0.0.1", lm.ports["lmtp"]) as s:
            s.sendmail("a@example.org", ["x@mail.test"], b"Subject: l1\r\n\r\n1\r\n")
        with smtplib.LMTP(lm.lmtp_socket) as s:
            s.sendmail("a@example.org", ["y@mail.test"], b"Subject: l2\r\n\r\n2\r\n")
        got = [(m.listener, m.rcpt_tos) for m in lm.wait_received(2)]
        expect_equal("lmtp", got, [("lmtp", ["x@mail.test"]),
                                   ("lmtp_unix", ["y@mail.test"])])
        lm.set_behaviour(lmtp_replies=["250 2.0.0 ok", "452 4.2.2 full"])
        with smtplib.LMTP(lm.lmtp_socket) as s:
            s.ehlo_or_helo_if_needed()
            s.mail("a@example.org")
            s.rcpt("p@mail.test")
            s.rcpt("q@mail.test")
            s.putcmd("data")
            s.getreply()
            s.send(b"Subject: l3\r\n\r\n3\r\n.\r\n")
            replies = [s.getreply()[0], s.getreply()[0]]
        expect_equal("lmtp replies", replies, [250, 452])


# --- openssl s_server ----------------------------------------------------

def check_sserver(t, pki):
    with t.case("s_server: handshake, data both ways"):
        s = SServer(t, pki.leaf("good")).start()
        with tls_connect(client_ctx(pki), s.port) as c:
            c.sendall(b"hello from client\n")
            s.wait_output(rb"hello from client")
            suite = s.wait_handshake()
            s.send(b"hello from s_server\n")
            expect_equal("reply", c.recv(100), b"hello from s_server\n")
        if not suite.startswith("TLS_"):
            fail(f"suite {suite}")
        r = t.run(["openssl", "s_client", "-connect", f"127.0.0.1:{s.port}",
                   "-showcerts", "-CAfile", pki.ca, "-verify_return_error"],
                  input=b"")
        expect_equal("certificates sent", r.stdout.count(b"BEGIN CERTIFICATE"), 2)
        s.stop()
    with t.case("s_server: a refused certificate shows on both sides"):
        s = SServer(t, pki.leaf("self_signed"), naccept=1).start()
        e = expect_raises(ssl.SSLCertVerificationError, tls_connect,
                          client_ctx(pki), s.port)
        expect_equal("code", e.verify_code, 18)
        if "unknown ca" not in s.wait_handshake_error():
            fail("s_server did not see the client's alert")


# --- Python TLS servers --------------------------------------------------

def check_tls_servers(t, pki):
    ctx = client_ctx(pki)
    leaf = pki.leaf("good")
    with t.case("tlsserver: echo; close_notify from the client is seen"):
        srv = tlsserver.echo_server(t, leaf)
        c = tls_connect(ctx, srv.port)
        c.sendall(b"abc" * 1000)
        got = b""
        while len(got) < 3000:
            got += c.recv(65536)
        c.unwrap().close()
        conn = srv.conn(0)
        expect_equal("echo", got, b"abc" * 1000)
        expect_equal("eof", conn.eof, "close_notify")
        srv.check()
    for notify in (True, False):
        with t.case(f"tlsserver: source of 200000 bytes, close_notify={notify}"):
            srv = tlsserver.source_server(t, leaf, 200000, close_notify=notify)
            strict = client_ctx(pki)  # Debian's Python hides a missing
            strict.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF  # close_notify
            c = tls_connect(strict, srv.port, suppress_ragged_eofs=False)
            got, ending = bytearray(), None
            while ending is None:
                try:
                    data = c.recv(65536)
                    if not data:
                        ending = "close_notify"
                    got += data
                except ssl.SSLError as e:  # UNEXPECTED_EOF_WHILE_READING
                    if "UNEXPECTED_EOF" not in str(e):
                        raise
                    ending = "eof"
            c.close()
            expect_equal("bytes", bytes(got), pattern_bytes(200000))
            expect_equal("ending", ending, "close_notify" if notify else "eof")
    with t.case("tlsserver: sink counts bytes"):
        srv = tlsserver.sink_server(t, leaf)
        c = tls_connect(ctx, srv.port)
        c.sendall(pattern_bytes(1 << 20))
        c.unwrap().close()
        conn = srv.conn(0)
        expect_equal("count", conn.bytes_in, 1 << 20)
        expect_equal("hash", conn.sha256_in.hexdigest(),
                     hashlib.sha256(pattern_bytes(1 << 20)).hexdigest())
    with t.case("tlsserver: half-close seen, reply still delivered"):
        srv = tlsserver.halfclose_server(t, leaf)
        c = tls_connect(ctx, srv.port)
        c.sendall(b"12345")
        time.sleep(0.05)
        socket.socket.shutdown(c, socket.SHUT_WR)  # TCP FIN, no close_notify
        expect_equal("reply", c.recv(100), b"got 5 bytes\n")
        conn = srv.conn(0)
        expect_equal("half-close", (conn.saw_half_close, conn.eof), (True, "eof"))
    with t.case("tlsserver: IPv6 loopback and plaintext mode"):
        srv = tlsserver.Server(t, tlsserver.echo_handler, None, host="::1")
        with socket.create_connection(("::1", srv.port)) as c:
            c.sendall(b"v6")
            expect_equal("echo", c.recv(10), b"v6")
        if mtlib.free_port6() <= 0:
            fail("no free port on ::1")


# --- scripted server -----------------------------------------------------

def check_scripted(t, pki):
    ctx = client_ctx(pki)
    with t.case("script: poplib STLS session recorded, no secret in clear"):
        srv = ScriptedServer(t, [
            S.send(b"+OK scripted ready\r\n"),
            S.expect_line(b"CAPA"),
            S.send(b"+OK\r\nSTLS\r\nUSER\r\n.\r\n"),
            S.expect_line(b"STLS"),
            S.send(b"+OK begin TLS\r\n"),
            S.start_tls(pki.leaf("good")),
            S.respond_until([(b"USER", b"+OK\r\n"), (b"PASS", b"+OK in\r\n"),
                             (b"STAT", b"+OK 0 0\r\n"), (b"QUIT", b"+OK bye\r\n")],
                            stop=b"QUIT"),
            S.expect_eof(),
        ])
        p = poplib.POP3("127.0.0.1", srv.port, timeout=10)
        p.stls(ctx)  # sends CAPA first
        p.user("box")
        p.pass_("pop-Secret7")
        expect_equal("stat", p.stat(), (0, 0))
        p.quit()
        c = srv.conn(0)
        srv.check()
        expect_equal("plain", bytes(c.plain_in), b"CAPA\r\nSTLS\r\n")
        if b"PASS pop-Secret7\r\n" not in c.tls_in or b"pop-Secret7" in c.plain_in:
            fail(f"recording wrong: {c.describe()}")
    with t.case("script: a refused STLS keeps the password off the wire"):
        srv = ScriptedServer(t, [
            S.send(b"+OK hi\r\n"), S.expect_line(b"CAPA"),
            S.send(b"+OK\r\nSTLS\r\n.\r\n"), S.expect_line(b"STLS"),
            S.send(b"-ERR no TLS today\r\n"), S.record_all()])
        p = poplib.POP3("127.0.0.1", srv.port, timeout=10)
        expect_raises(poplib.error_proto, p.stls, ctx)
        p.close()
        c = srv.conn(0)
        expect_equal("plain", bytes(c.plain_in), b"CAPA\r\nSTLS\r\n")
    with t.case("script: a mismatch is reported by check()"):
        srv = ScriptedServer(t, [S.send(b"+OK\r\n"), S.expect_line(b"CAPA")])
        with socket.create_connection(("127.0.0.1", srv.port)) as s:
            s.recv(10)
            s.sendall(b"NOOP\r\n")
            s.recv(10)
        srv.conn(0)
        e = expect_raises(TestFailure, srv.check)
        if "NOOP" not in str(e):
            fail(f"report lacks the line: {e}")


# --- daemon runner (on a stand-in) ----------------------------------------

def check_runner(t):
    standin = [PYTHON, STANDIN]
    p1, p2 = t.port(), t.port()
    with t.case("runner self-test: start, HUP, USR1, RSS, TERM (stand-in)"):
        mt = Mailtunnel(t, f"[a]\naccept = 127.0.0.1:{p1}\n", program=standin)
        mt.start(wait_ports=[p1])
        mt.wait_for_log(rf"listening on 127.0.0.1:{p1}")
        mark = mt.log_mark()
        mt.write_config(f"[a]\naccept = 127.0.0.1:{p1}\n[b]\naccept = 127.0.0.1:{p2}\n")
        mt.reload()
        mt.wait_for_log(r"reloading configuration", since=mark)
        mtlib.wait_listening(p2, 5, mt.proc)
        mt.signal("USR1")
        mt.wait_for_log(r"statistics: 2 listeners")
        if not 1000 < mt.rss_kib() < 200000:
            fail(f"rss {mt.rss_kib()} KiB")
        expect_equal("exit code", mt.stop(), 0)
    with t.case("runner self-test: -t gives (code, output) (stand-in)"):
        code, out = check_config(t, f"accept = 127.0.0.1:{p1}\n", program=standin)
        expect_equal("good", (code, out.strip()), (0, f"accept = 127.0.0.1:{p1}"))
        code, out = check_config(t, "nonsense\n", program=standin)
        if code != 78 or "line without '='" not in out:
            fail(f"bad config: {code} {out!r}")
    with t.case("runner self-test: a port that never listens fails with the log"):
        mt = Mailtunnel(t, "[a]\n", program=standin).start()
        e = expect_raises(TestFailure, mtlib.wait_listening, p1, 0.5, mt.proc)
        if "not listening" not in str(e) or mt.log_path not in str(e):
            fail(f"message lacks the facts: {e}")
        mt.stop()
    with t.case("runner: command lines; a missing binary names the fix"):
        expect_equal("argv", mtlib.daemon.daemon_argv("/x.conf")[-3:],
                     [mtlib.daemon.binary(), "-f", "/x.conf"])
        expect_equal("-t argv", mtlib.daemon.check_argv("/x.conf")[-3:],
                     [mtlib.daemon.binary(), "-t", "/x.conf"])
        if not mtlib.daemon.binary().endswith("/src/mailtunnel"):
            fail(f"binary {mtlib.daemon.binary()}")
        os.environ["MT_MAILTUNNEL"] = t.path("no-such-binary")
        try:
            e = expect_raises(TestFailure, Mailtunnel, t, "")
            if "build it first (make)" not in str(e):
                fail(f"message: {e}")
        finally:
            del os.environ["MT_MAILTUNNEL"]


# --- cleanup on every exit path -------------------------------------------

def marker_procs(marker):
    r = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    return r.stdout.split()


def marked_sleep(t, marker):
    """A path to sleep(1) whose name carries marker, for pgrep -f."""
    path = t.path(marker)
    os.symlink("/bin/sleep", path)
    return path


def check_cleanup(t):
    with t.case("cleanup: groups and escaped daemons are killed, folder removed"):
        inner = TestEnv("inner")
        marker = f"mtlib-marker-{os.getpid()}-a"
        sleep = marked_sleep(inner, marker)
        inner.spawn(["/bin/sh", "-c", f"setsid {sleep} 300 & {sleep} 301; :"],
                    name="escaper")
        mtlib.wait_until(lambda: len(marker_procs(marker)) >= 3, 5, "sleepers")
        inner.cleanup()
        mtlib.wait_until(lambda: not marker_procs(marker), 5, "no sleepers")
        if os.path.exists(inner.dir):
            fail("folder left behind")
    for how in ("TERM", "INT", "KILL", "exception"):
        with t.case(f"cleanup: test process ended by {how} leaves nothing"):
            marker = f"mtlib-marker-{os.getpid()}-{how}"
            child = subprocess.Popen([PYTHON, HERE, "--child", marker, how],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            folder = child.stdout.readline().decode().strip()
            if how != "exception":
                child.send_signal(getattr(signal, "SIG" + how))
            out = child.communicate(timeout=15)[0].decode()
            expect_equal("exit code", child.returncode, -9 if how == "KILL" else 1)
            if how == "KILL":
                # Nothing runs after SIGKILL: the direct children die of their
                # parent-death signal; a daemon that left its group is
                # reparented to the nearest subreaper (us), not to init.
                mtlib.wait_until(lambda: not marker_procs(marker + "-direct"),
                                 5, "direct children gone")
                for pid in marker_procs(marker + "-escaped"):
                    expect_equal("reparented", _ppid(int(pid)), os.getpid())
                    os.kill(int(pid), 9)
                    os.waitpid(int(pid), 0)
            mtlib.wait_until(lambda: not marker_procs(marker), 5,
                             f"no leftover processes ({out})")
            if how == "KILL":  # nobody was left to remove it
                shutil.rmtree(folder, ignore_errors=True)
            elif os.path.exists(folder):
                fail(f"folder {folder} left behind: {out}")


def _ppid(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def child_main(t):
    """--child MARKER HOW: start processes, then wait to be ended."""
    marker, how = sys.argv[2], sys.argv[3]
    direct = marked_sleep(t, marker + "-direct")
    escaped = marked_sleep(t, marker + "-escaped")
    t.spawn([direct, "300"], name="sleeper")
    t.spawn(["/bin/sh", "-c", f"setsid {escaped} 300 & wait"], name="esc")
    mtlib.wait_until(lambda: len(marker_procs(marker)) >= 3, 5, "sleepers")
    print(t.dir, flush=True)
    if how == "exception":
        raise RuntimeError("boom")
    time.sleep(30)


# --- network namespace -----------------------------------------------------

def check_netns(t):
    with t.case("netns: names resolve to loopback, test CA is the system CA"):
        mtlib.require_root("the namespace check uses unshare")
        r = subprocess.run([PYTHON, HERE, "--netns"], capture_output=True,
                           text=True, timeout=40)
        if r.returncode != 0 or "netns-ok" not in r.stdout:
            fail(f"namespace run failed ({r.returncode}):\n{r.stdout}{r.stderr}")
        with open("/etc/hosts") as f:
            if "pop.gmail.com" in f.read():
                fail("/etc/hosts of the host was changed")
        srv = tlsserver.echo_server(t, t.pki().leaf("good"))
        expect_raises(ssl.SSLCertVerificationError, tls_connect,
                      ssl.create_default_context(), srv.port)  # host store


def netns_main(t):
    """--netns: runs inside the namespace, on the real ports."""
    expect_equal("resolve", socket.gethostbyname("pop.gmail.com"), "127.0.0.1")
    pki = t.pki()
    dc = Dovecot(t, pki.leaf("good"), make_messages(2), protocols=("pop3",),
                 ports={"pop3": 110, "pop3s": 995}).start()
    smtp = SmtpServer(t, pki.leaf("good"), ports={"smtp": 25, "smtps": 465}).start()
    system = ssl.create_default_context()  # the system store only
    p = poplib.POP3_SSL("pop.gmail.com", 995, context=system)
    p.user(dc.user)
    p.pass_(dc.password)
    expect_equal("stat", p.stat()[0], 2)
    p.quit()
    with smtplib.SMTP_SSL("smtp.gmail.com", 465, context=system) as s:
        s.sendmail("a@example.org", ["b@gmail.com"], b"Subject: ns\r\n\r\nx\r\n")
    smtp.wait_received(1)
    r = t.run(["openssl", "s_client", "-connect", "pop.gmail.com:995",
               "-verify_return_error", "-verify_hostname", "pop.gmail.com"],
              input=b"QUIT\r\n", check=False)
    if b"Verify return code: 0 (ok)" not in r.stdout:
        fail(f"openssl s_client with default paths: {r.stdout[-500:]!r}")
    print("netns-ok", flush=True)


# --------------------------------------------------------------------------

def main(t):
    start = time.monotonic()
    pki = t.pki()
    check_peers(t)
    check_pki(t, pki)
    check_dovecot(t, pki)
    check_smtp(t, pki)
    check_sserver(t, pki)
    check_tls_servers(t, pki)
    check_scripted(t, pki)
    check_runner(t)
    check_cleanup(t)
    check_netns(t)
    print(f"fixtures self-test took {time.monotonic() - start:.1f}s")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        mtlib.run(child_main, name="fixtures-child")
    elif sys.argv[1:2] == ["--netns"]:
        mtlib.run(netns_main, name="fixtures-netns", netns=Namespace())
    else:
        mtlib.run(main)
