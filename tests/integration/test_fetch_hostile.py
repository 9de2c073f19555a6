#!/usr/bin/python3
"""mailtunnel fetch against scripted servers that misbehave: a connection
that drops in the middle of a RETR or of an IMAP literal (nothing of that
message is recorded; the next run completes), garbage, overlong lines,
absurd literals, STARTTLS missing, refused or followed by injected
plaintext (no login without TLS), refused certificates; OAuth logins with
a token command; and no secret in any log line."""
import base64
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mtlib
from mtlib import Dovecot, expect_equal, fail, make_messages
from mtlib import script as S
from mtlib.script import ScriptedServer
from fetchlib import (Fetch, expect_rc, maildir_messages, message_ids)

TOKEN = "ya29.A0-secret-token-value"


def stuffed(raw):
    lines = raw.split(b"\r\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n"
                    for ln in lines) + b".\r\n"


def pop3_server(msgs, cut_retr=None, capa=b"USER\r\nUIDL\r\nPIPELINING\r\n",
                replies=None):
    """A POP3 dialogue (after any TLS); replies overrides whole commands."""
    replies = replies or {}

    def run(conn):
        conn.send(b"+OK ready\r\n")
        while True:
            line = conn.read_line()
            if not line:
                return
            conn.lines.append(line)
            words = line.split()
            cmd = words[0].upper() if words else b""
            if cmd in replies:
                conn.send(replies[cmd])
            elif cmd == b"CAPA":
                conn.send(b"+OK\r\n" + capa + b".\r\n")
            elif cmd in (b"USER", b"PASS", b"DELE"):
                conn.send(b"+OK\r\n")
            elif cmd == b"AUTH" and len(words) == 2:
                conn.send(b"+ \r\n")
            elif cmd == b"UIDL":
                conn.send(b"+OK\r\n" + b"".join(
                    b"%d uid-%d\r\n" % (i + 1, i + 1)
                    for i in range(len(msgs))) + b".\r\n")
            elif cmd == b"LIST":
                conn.send(b"+OK\r\n" + b"".join(
                    b"%d %d\r\n" % (i + 1, len(m))
                    for i, m in enumerate(msgs)) + b".\r\n")
            elif cmd == b"RETR":
                n = int(words[1])
                body = stuffed(msgs[n - 1])
                if n == cut_retr:
                    conn.send(b"+OK\r\n" + body[:len(body) // 2])
                    conn.close()
                    return
                conn.send(b"+OK\r\n" + body)
            elif cmd == b"QUIT":
                conn.send(b"+OK bye\r\n")
                return
            elif base64.b64encode(b"x") and cmd == b"":
                conn.send(b"-ERR empty\r\n")
            else:
                # An AUTH response line.
                conn.send(b"+OK logged in\r\n")
    return run


def uid_set(s):
    out = []
    for part in s.split(","):
        if ":" in part:
            lo, hi = part.split(":")
            out += range(int(lo), int(hi) + 1)
        else:
            out.append(int(part))
    return out


CAPS = b"IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS"


def imap_server(msgs, cut_uid=None, literal=None, auth_reply=None,
                caps=CAPS, uid_last=False):
    """An IMAP dialogue; UIDs are 1..n. literal(uid) may replace the
    "{n}" announcement; auth_reply(conn, tag, line) handles AUTHENTICATE;
    uid_last sends each UID after the body (legal, and awkward)."""
    def run(conn):
        conn.send(b"* OK [CAPABILITY " + caps + b"] ready\r\n")
        while True:
            line = conn.read_line()
            if not line:
                return
            conn.lines.append(line)
            tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
            up = rest.upper()
            if up.startswith(b"CAPABILITY"):
                conn.send(b"* CAPABILITY " + caps + b"\r\n" + tag + b" OK\r\n")
            elif up.startswith(b"AUTHENTICATE") and auth_reply:
                auth_reply(conn, tag, rest)
            elif up.startswith(b"AUTHENTICATE") or up.startswith(b"LOGIN"):
                conn.send(tag + b" OK logged in\r\n")
            elif up.startswith(b"EXAMINE") or up.startswith(b"SELECT"):
                conn.send(b"* %d EXISTS\r\n* OK [UIDVALIDITY 42] v\r\n"
                          b"* OK [UIDNEXT %d] n\r\n" % (len(msgs),
                                                        len(msgs) + 1)
                          + tag + b" OK [READ-ONLY] done\r\n")
            elif up.startswith(b"UID SEARCH"):
                conn.send(b"* SEARCH " + b" ".join(
                    b"%d" % (i + 1) for i in range(len(msgs))) + b"\r\n" +
                    tag + b" OK\r\n")
            elif up.startswith(b"UID FETCH"):
                for uid in uid_set(rest.split()[2].decode()):
                    m = msgs[uid - 1]
                    ann = literal(uid) if literal else b"{%d}" % len(m)
                    if uid_last:
                        head = (b"* %d FETCH (RFC822.SIZE %d BODY[] " %
                                (uid, len(m)) + ann + b"\r\n")
                        tail = b" UID %d)\r\n" % uid
                    else:
                        head = (b"* %d FETCH (UID %d RFC822.SIZE %d BODY[] "
                                % (uid, uid, len(m)) + ann + b"\r\n")
                        tail = b")\r\n"
                    if uid == cut_uid:
                        conn.send(head + m[:len(m) // 2])
                        conn.close()
                        return
                    conn.send(head + m + tail)
                conn.send(tag + b" OK done\r\n")
            elif up.startswith(b"LOGOUT"):
                conn.send(b"* BYE\r\n" + tag + b" OK\r\n")
                return
            else:
                conn.send(tag + b" BAD what\r\n")
    return run


class Fake:
    """What Fetch needs to know of a scripted server."""

    def __init__(self, srv, scheme):
        self.ports = {scheme: srv.port}
        self.host = "127.0.0.1"
        self.user = "box"
        self.password = "Scripted-Pass-9"


def run_against(t, pki, steps, scheme, *extra, target=None, **kw):
    srv = ScriptedServer(t, steps)
    f = Fetch(t, pki, Fake(srv, scheme))
    path = target or t.path(os.path.basename(t.unique_path("md")))
    r = f.run(scheme, f"maildir:{path}", *extra, **kw)
    return srv, f, path, r


def no_secret(r, *secrets):
    for s in secrets:
        if s in r.stderr:
            fail(f"a secret reached the log:\n{r.stderr[-2000:]}")


def tls(pki):
    return S.start_tls(pki.leaf("good"))


def main(t):
    pki = t.pki()
    msgs = make_messages(3, sizes=(3000,))

    with t.case("POP3: the server drops mid-RETR; nothing of that message "
                "is recorded, the next run completes"):
        steps = (lambda i: [tls(pki), S.call(pop3_server(
            msgs, cut_retr=2 if i == 0 else None))])
        srv, f, path, r = run_against(t, pki, steps, "pop3s")
        expect_rc(r, 75)
        if "lost" not in r.stderr:
            fail(f"no word of the lost connection:\n{r.stderr}")
        got = message_ids(maildir_messages(path))
        expect_equal("delivered before the drop", got,
                     message_ids(msgs[:1]))
        expect_equal("staging copies left", os.listdir(path + "/tmp"), [])
        r = f.run("pop3s", f"maildir:{path}")
        expect_rc(r, 0)
        expect_equal("delivered", sorted(message_ids(maildir_messages(path))),
                     sorted(message_ids(msgs)))

    with t.case("IMAP: the server drops mid-literal; nothing of that "
                "message is recorded, the next run completes"):
        steps = (lambda i: [tls(pki), S.call(imap_server(
            msgs, cut_uid=3 if i == 0 else None))])
        srv, f, path, r = run_against(t, pki, steps, "imaps")
        expect_rc(r, 75)
        expect_equal("delivered before the drop",
                     sorted(message_ids(maildir_messages(path))),
                     sorted(message_ids(msgs[:2])))
        expect_equal("staging copies left", os.listdir(path + "/tmp"), [])
        r = f.run("imaps", f"maildir:{path}")
        expect_rc(r, 0)
        expect_equal("delivered", sorted(message_ids(maildir_messages(path))),
                     sorted(message_ids(msgs)))

    with t.case("POP3: garbage in a UIDL listing is bad data (65)"):
        steps = [tls(pki), S.call(pop3_server(msgs, replies={
            b"UIDL": b"+OK\r\n1 \x01\x02garbage\r\n.\r\n"}))]
        srv, f, path, r = run_against(t, pki, steps, "pop3s")
        expect_rc(r, 65)
        if "malformed UIDL line" not in r.stderr:
            fail(r.stderr)

    with t.case("POP3: an overlong line is bad data (65), memory capped"):
        steps = [tls(pki), S.call(pop3_server(msgs, replies={
            b"UIDL": b"+OK " + b"x" * 200000 + b"\r\n"}))]
        srv, f, path, r = run_against(t, pki, steps, "pop3s")
        expect_rc(r, 65)
        if "line longer than 8192 bytes" not in r.stderr:
            fail(r.stderr)

    for name, ann in (("huge", b"{99999999999}"), ("negative", b"{-5}"),
                      ("garbage", b"{12x}")):
        with t.case(f"IMAP: a {name} literal is bad data (65)"):
            steps = [tls(pki), S.call(imap_server(
                msgs, literal=lambda uid, a=ann: a))]
            srv, f, path, r = run_against(t, pki, steps, "imaps")
            expect_rc(r, 65)
            if "malformed response" not in r.stderr:
                fail(r.stderr)
            expect_equal("delivered", maildir_messages(path), [])

    with t.case("POP3 STARTTLS not offered: no login in plaintext (78)"):
        steps = [S.call(pop3_server(msgs, capa=b"USER\r\nUIDL\r\n"))]
        srv, f, path, r = run_against(t, pki, steps, "pop3")
        expect_rc(r, 78)
        if "not logging in without TLS" not in r.stderr:
            fail(r.stderr)
        lines = b"".join(srv.conn(0).lines)
        if b"USER" in lines or b"PASS" in lines or b"AUTH" in lines:
            fail(f"logged in without TLS: {lines!r}")

    with t.case("IMAP STARTTLS refused: no login in plaintext (78)"):
        steps = [S.send(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n"),
                 S.expect_line(re.compile(rb"STARTTLS")),
                 S.call(lambda c: c.send(c.lines[-1].split()[0] +
                                         b" NO not today\r\n")),
                 S.record_all()]
        srv, f, path, r = run_against(t, pki, steps, "imap")
        expect_rc(r, 78)
        c = srv.conn(0)
        if b"LOGIN" in c.received or b"AUTHENTICATE" in c.received:
            fail(f"logged in without TLS: {c.received!r}")

    with t.case("POP3 STLS answered with injected plaintext: refused (65)"):
        steps = [S.send(b"+OK hi\r\n"), S.expect_line(b"CAPA"),
                 S.send(b"+OK\r\nSTLS\r\nUSER\r\n.\r\n"),
                 S.expect_line(b"STLS"),
                 S.send(b"+OK go ahead\r\n+OK injected\r\n"),
                 S.record_all()]
        srv, f, path, r = run_against(t, pki, steps, "pop3")
        expect_rc(r, 65)
        if "plaintext injection" not in r.stderr:
            fail(r.stderr)
        if b"PASS" in srv.conn(0).received:
            fail("a password went out")

    for variant, says in (("expired", "certificate expired on"),
                          ("wrong_host", "127.0.0.1 not in certificate"),
                          ("unknown_ca", "unknown CA: issuer CN=mtlib Unknown "
                           "Root CA is not trusted")):
        with t.case(f"certificate {variant}: refused before any login (75)"):
            steps = [S.start_tls(pki.leaf(variant)), S.call(pop3_server(msgs))]
            srv, f, path, r = run_against(t, pki, steps, "pop3s")
            expect_rc(r, 75)
            if f"TLS handshake with 127.0.0.1 [127.0.0.1:{srv.port}] failed: " \
                    f"" not in r.stderr or says not in r.stderr:
                fail(f"the log does not say {says!r}:\n{r.stderr}")
            if srv.conn(0).lines:
                fail("the client spoke after a refused certificate")

    def xoauth2(conn, tag, rest):
        words = rest.split()
        want = base64.b64encode(b"user=box\x01auth=Bearer " +
                                TOKEN.encode() + b"\x01\x01")
        if words[1].upper() != b"XOAUTH2" or words[2] != want:
            conn.send(tag + b" NO [AUTHENTICATIONFAILED] wrong\r\n")
            return
        conn.send(tag + b" OK welcome\r\n")

    with t.case("IMAP XOAUTH2 with a token command"):
        steps = [tls(pki), S.call(imap_server(msgs, auth_reply=xoauth2))]
        srv, f, path, r = run_against(
            t, pki, steps, "imaps", "--token-command", f"echo {TOKEN}",
            "-vv", secret=False)
        expect_rc(r, 0)
        expect_equal("delivered", len(maildir_messages(path)), len(msgs))
        no_secret(r, TOKEN, base64.b64encode(b"user=box\x01auth=Bearer " +
                                             TOKEN.encode()).decode()[:40])
        if "C: <redacted>" not in r.stderr and \
                "AUTHENTICATE <redacted>" not in r.stderr:
            fail(f"no redacted trace:\n{r.stderr[-2000:]}")

    def oauth_refused(conn, tag, rest):
        err = base64.b64encode(b'{"status":"401","schemes":"Bearer",'
                               b'"scope":"https://mail.google.com/"}')
        conn.send(b"+ " + err + b"\r\n")
        conn.lines.append(conn.read_line())
        conn.send(tag + b" NO [AUTHENTICATIONFAILED] Invalid credentials\r\n")

    with t.case("IMAP XOAUTH2 refused: exit 77, one clear line, the token "
                "nowhere"):
        steps = [tls(pki), S.call(imap_server(msgs, auth_reply=oauth_refused))]
        srv, f, path, r = run_against(
            t, pki, steps, "imaps", "--token-command", f"echo {TOKEN}",
            "-vv", secret=False)
        expect_rc(r, 77)
        errs = [ln for ln in r.stderr.splitlines() if " err: " in ln]
        expect_equal("error lines", len(errs), 1)
        if "refused the login of box" not in errs[0] or \
                "token status: 401" not in errs[0]:
            fail(errs[0])
        no_secret(r, TOKEN)
        expect_equal("connections", len(srv.conns), 1)

    with t.case("IMAP: a server that sends the UID after the body"):
        steps = [tls(pki), S.call(imap_server(msgs, uid_last=True))]
        srv, f, path, r = run_against(t, pki, steps, "imaps")
        expect_rc(r, 0)
        expect_equal("delivered", sorted(message_ids(maildir_messages(path))),
                     sorted(message_ids(msgs)))
        fetches = [ln for ln in srv.conn(0).lines if b"UID FETCH" in ln]
        # One batch that brought nothing usable, then one per message.
        expect_equal("UID FETCH commands", len(fetches), 1 + len(msgs))

    with t.case("IMAP without SASL-IR: AUTHENTICATE PLAIN answers the "
                "challenge"):
        steps = [tls(pki), S.call(imap_server(
            msgs, caps=b"IMAP4rev1 AUTH=PLAIN", auth_reply=lambda c, tag, r:
            (c.send(b"+ \r\n"), c.lines.append(c.read_line()),
             c.send(tag + b" OK in\r\n"))))]
        srv, f, path, r = run_against(t, pki, steps, "imaps")
        expect_rc(r, 0)
        lines = srv.conn(0).lines
        i = next(k for k, ln in enumerate(lines) if b"AUTHENTICATE" in ln)
        expect_equal("AUTHENTICATE", lines[i].split()[1:],
                     [b"AUTHENTICATE", b"PLAIN"])
        expect_equal("response", base64.b64decode(lines[i + 1].strip()),
                     b"\0box\0Scripted-Pass-9")

    with t.case("IMAP without AUTH=PLAIN: LOGIN with quoted strings"):
        steps = [tls(pki), S.call(imap_server(msgs, caps=b"IMAP4rev1"))]
        srv, f, path, r = run_against(t, pki, steps, "imaps")
        expect_rc(r, 0)
        login = [ln for ln in srv.conn(0).lines if b"LOGIN" in ln]
        expect_equal("LOGIN", login[0].split()[1:],
                     [b"LOGIN", b'"box"', b'"Scripted-Pass-9"'])

    with t.case("POP3 XOAUTH2 with a token command"):
        steps = [tls(pki), S.call(pop3_server(
            msgs, capa=b"USER\r\nUIDL\r\nSASL PLAIN XOAUTH2\r\n"))]
        srv, f, path, r = run_against(
            t, pki, steps, "pop3s", "--token-command", f"echo {TOKEN}",
            secret=False)
        expect_rc(r, 0)
        lines = srv.conn(0).lines
        if not any(ln.startswith(b"AUTH XOAUTH2") for ln in lines):
            fail(f"no AUTH XOAUTH2: {lines!r}")

    with t.case("a password command's password logs in; it is never "
                "logged"):
        dc = Dovecot(t, pki.leaf("good"), msgs).start()
        f = Fetch(t, pki, dc)
        path = t.path("pwcmd")
        for scheme in ("pop3s", "imaps"):
            r = f.run(scheme, f"maildir:{path}-{scheme}", "--password-command",
                      f"printf '%s\\n' '{dc.password}'", "-vv", secret=False)
            expect_rc(r, 0)
            no_secret(r, dc.password)
            expect_equal("delivered", len(maildir_messages(f"{path}-{scheme}")),
                         len(msgs))

    with t.case("a wrong password: exit 77, one clear line, one attempt"):
        f = Fetch(t, pki, dc, password="wrong-password")
        for scheme in ("pop3s", "imaps"):
            mark = len(open(dc.log_path, "rb").read())
            r = f.run(scheme, f"maildir:{t.path('wrong')}")
            expect_rc(r, 77)
            errs = [ln for ln in r.stderr.splitlines() if " err: " in ln]
            expect_equal("error lines", len(errs), 1)
            if "refused the login of box" not in errs[0]:
                fail(errs[0])
            no_secret(r, "wrong-password")
            # Dovecot logs a failed login when the client has gone, which
            # may be after the next case started: look at this protocol's.
            log = open(dc.log_path, "rb").read()[mark:]
            proto = scheme[:-1].encode()
            tries = re.findall(proto + rb"-login: .*auth failed, (\d+) "
                               rb"attempts", log)
            if tries and tries != [b"1"]:
                fail(f"the server saw {tries} attempts")

    with t.case("a password file others may read is refused (78)"):
        f = Fetch(t, pki, dc)
        os.chmod(f.password_file, 0o644)
        r = f.run("imaps", f"maildir:{t.path('open')}")
        expect_rc(r, 78)
        if "may be read by group or others (mode 0644)" not in r.stderr:
            fail(r.stderr)


mtlib.run(main)
