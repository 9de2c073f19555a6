"""Dovecot (Debian dovecot-imapd + dovecot-pop3d) as a test mail server.

    dc = Dovecot(t, cert=pki.leaf("good"), messages=make_messages(5)).start()
    dc.ports["pop3s"], dc.user, dc.password
    dc.count(), dc.message_ids(), dc.add(raw), dc.stop()

One passwd-file user with a Maildir, four listeners on free loopback ports:
pop3 (STARTTLS), pop3s, imap (STARTTLS), imaps. Everything lives in the
test folder; the master runs in the foreground (-F) as a child of the test.
As root, mail processes run as the dovecot user and login processes as
dovenull (Debian's defaults); as another user, every service runs as that
user.
"""
import grp
import json
import os
import pwd
import shutil
import socket
import ssl

from .env import fail, wait_closed, wait_listening, wait_until
from .peers import require

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
LISTENERS = ("pop3", "pop3s", "imap", "imaps")

_LOGIN_SERVICE = """service {proto}-login {{
  chroot =
  inet_listener {proto} {{
    port = {plain}
  }}
  inet_listener {proto}s {{
    port = {tls}
    ssl = yes
  }}
}}
"""


class Dovecot:
    """A Dovecot instance with one user; configure, then start().

    cert: pki.Cert served on every listener (its chain file is sent).
    messages: raw messages (bytes) put in the Maildir before start, in
    order (POP3 message 1 is messages[0]). ports: fixed ports by listener
    name (default: free ones). protocols: subset of ("pop3", "imap").
    plaintext_auth: False sets disable_plaintext_auth = yes (the default:
    no login before TLS). Dovecot counts a client whose address equals its
    own as secure and lets it log in without TLS anyway: listen on
    "127.0.0.2" (clients connect to dc.host and come from 127.0.0.1) to get
    the refusal a remote server gives. settings: extra top-level "key = value" settings
    (pop3_uidl_format, ssl_min_protocol, mail_max_userip_connections...),
    which override the defaults. extra_config: raw text appended.
    """

    def __init__(self, env, cert, messages=(), user="box",
                 password="mtlib-Secret-Pass1", ports=None,
                 protocols=("pop3", "imap"), listen="127.0.0.1",
                 plaintext_auth=False, settings=None, extra_config="",
                 name="dovecot"):
        require("dovecot-core", "dovecot-imapd", "dovecot-pop3d")
        self.env = env
        self.cert = cert
        self.user = user
        self.password = password
        self.protocols = tuple(protocols)
        self.listen = listen
        self.plaintext_auth = plaintext_auth
        self.settings = dict(settings or {})
        self.extra_config = extra_config
        self.host = listen.split(",")[0].strip()
        self.dir = env.unique_path(name)
        os.makedirs(self.dir)
        self.home = os.path.join(self.dir, "home")
        self.maildir = os.path.join(self.home, "Maildir")
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self.ports = {}
        fixed = ports or {}
        for name in LISTENERS:
            if name.rstrip("s") in self.protocols:
                self.ports[name] = fixed.get(name) or env.port(self.host)
        self.proc = None
        self._owner = self._pick_owner()
        self._fill_maildir(messages)

    # --- set-up ----------------------------------------------------------

    def _pick_owner(self):
        """(uid, gid, login user, internal user) for the processes."""
        if os.geteuid() == 0:
            pw = pwd.getpwnam("dovecot")
            return pw.pw_uid, pw.pw_gid, None, None
        me = pwd.getpwuid(os.geteuid()).pw_name
        return os.geteuid(), os.getegid(), me, me

    def _fill_maildir(self, messages):
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(self.maildir, sub), exist_ok=True)
        # Dovecot numbers new mail in file-name order: the time stamp prefix
        # keeps the list order.
        for i, raw in enumerate(messages):
            name = f"{1600000000 + i}.M{i}P1.mtlib"
            with open(os.path.join(self.maildir, "new", name), "wb") as f:
                f.write(raw)
        uid, gid = self._owner[:2]
        if os.geteuid() == 0:
            for root, dirs, files in os.walk(self.home):
                os.chown(root, uid, gid)
                for f in files:
                    os.chown(os.path.join(root, f), uid, gid)

    def _ssl_lines(self, cert):
        lines = [f"ssl_cert = <{cert.chain}", f"ssl_key = <{cert.key}"]
        if os.path.exists("/usr/share/dovecot/dh.pem"):
            lines.append("ssl_dh = </usr/share/dovecot/dh.pem")
        if getattr(cert, "weak", False):
            lines.append("ssl_cipher_list = DEFAULT:@SECLEVEL=0")
        return lines

    def _config(self):
        d = self.dir
        uid, gid, login_user, internal_user = self._owner
        base = {
            "base_dir": f"{d}/run",
            "state_dir": f"{d}/state",
            "log_path": self.log_path,
            "protocols": " ".join(self.protocols),
            "listen": self.listen,
            "ssl": "yes",
            "disable_plaintext_auth": "no" if self.plaintext_auth else "yes",
            "auth_mechanisms": "plain login",
            "mail_location": "maildir:~/Maildir",
            "pop3_uidl_format": "%08Xu%08Xv",
            "first_valid_uid": "1",
            "first_valid_gid": "1",
            "mail_max_userip_connections": "100",
        }
        if login_user:
            base["default_login_user"] = login_user
            base["default_internal_user"] = internal_user
            base["default_internal_group"] = grp.getgrgid(gid).gr_name
        base.update(self.settings)
        lines = [f"{k} = {v}" for k, v in base.items()]
        lines += self._ssl_lines(self.cert)
        lines.append(f"passdb {{\n  driver = passwd-file\n  args = {d}/users\n}}")
        lines.append(f"userdb {{\n  driver = passwd-file\n  args = {d}/users\n}}")
        for proto in self.protocols:
            lines.append(_LOGIN_SERVICE.format(
                proto=proto, plain=self.ports[proto],
                tls=self.ports[proto + "s"]))
        lines.append("service anvil {\n  chroot =\n}")
        if login_user:
            lines.append(f"service auth {{\n  user = {internal_user}\n}}")
        return "\n".join(lines) + "\n" + self.extra_config + "\n"

    def _write_config(self):
        uid, gid = self._owner[:2]
        with open(os.path.join(self.dir, "users"), "w") as f:
            f.write(f"{self.user}:{{PLAIN}}{self.password}:{uid}:{gid}::"
                    f"{self.home}\n")
        with open(self.conf, "w") as f:
            f.write(self._config())
        for sub in ("run", "state"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)

    # --- lifecycle -------------------------------------------------------

    def start(self, timeout=15.0):
        """Write the config, start the master, wait for every listener."""
        self._write_config()
        self.proc = self.env.spawn([DOVECOT, "-F", "-c", self.conf],
                                   name="dovecot", log=self.log_path)
        self.env.on_cleanup(lambda: self.stop(clean=False))
        try:
            wait_listening(list(self.ports.values()), timeout, self.proc)
        except Exception:
            print(self.log_tail(), flush=True)
            raise
        return self

    def stop(self, timeout=10.0, clean=True):
        """Stop the master, wait for it to exit and the ports to close.

        clean: what `doveadm stop` does (SIGTERM to the master, which takes
        about a second to wind down), minus doveadm's own wait, which would
        last 3 s: the master is our child and stays a zombie until reaped.
        clean=False kills the whole process group at once (test cleanup).
        """
        if self.proc is None or self.proc.poll() is not None:
            return
        if clean:
            self.proc.signal("TERM")
            try:
                self.proc.wait(timeout)
            finally:
                self.proc.stop()
        else:
            self.proc.stop(grace=0)
        wait_closed(list(self.ports.values()), timeout)

    def reload(self):
        """Re-read the configuration (doveadm reload)."""
        self._write_config()
        mark = self.proc.log_mark()
        self.doveadm("reload")
        self.proc.wait_for_log(r"SIGHUP received", 10, since=mark)

    def set_cert(self, cert, timeout=10.0):
        """Serve another certificate from now on (rewrites config, reloads).

        Returns once a TLS listener hands out the new certificate, so the
        next connection gets it.
        """
        self.cert = cert
        if self.proc is None or not self.proc.alive:
            return
        self.reload()
        with open(cert.cert) as f:
            want = ssl.PEM_cert_to_DER_cert(f.read())
        wait_until(lambda: self.served_cert() == want, timeout,
                   f"dovecot to serve {cert.name}")

    def served_cert(self, listener=None):
        """The certificate (DER) a TLS listener sends now, unverified."""
        listener = listener or ("pop3s" if "pop3s" in self.ports else "imaps")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        try:
            with socket.create_connection((self.host, self.ports[listener]),
                                          5) as raw:
                with ctx.wrap_socket(raw) as s:
                    return s.getpeercert(binary_form=True)
        except (OSError, ssl.SSLError):
            return None

    # --- inspection ------------------------------------------------------

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=30):
        text = self.log_text().splitlines()[-lines:]
        return "\n".join([f"--- last lines of {self.log_path} ---"] + text)

    def doveadm(self, *args, input=None, check=True, formatter=None):
        """Run doveadm with this instance's config; return CompletedProcess."""
        argv = [DOVEADM, "-c", self.conf]
        if formatter:
            argv += ["-f", formatter]
        return self.env.run(argv + list(args), check=check, input=input)

    def fetch(self, fields="uid flags size.physical hdr.message-id",
              query=("all",), mailbox="INBOX"):
        """doveadm fetch: a list of dicts (field -> str), in UID order."""
        r = self.doveadm("fetch", "-u", self.user, fields, "mailbox", mailbox,
                         *query, formatter="json")
        out = r.stdout.decode("utf-8", "replace").strip()
        return json.loads(out) if out else []

    def count(self, mailbox="INBOX"):
        """Number of messages in mailbox (as Dovecot sees it)."""
        r = self.doveadm("mailbox", "status", "-u", self.user, "messages",
                         mailbox, formatter="json")
        try:
            return int(json.loads(r.stdout)[0]["messages"])
        except (ValueError, LookupError):
            fail(f"unexpected doveadm mailbox status output: {r.stdout!r}")

    def message_ids(self, mailbox="INBOX"):
        """Message-ID header of every message, in UID order."""
        return [m["hdr.message-id"].strip()
                for m in self.fetch("uid hdr.message-id", mailbox=mailbox)]

    def raw_messages(self, mailbox="INBOX"):
        """Full text of every message (bytes), in UID order."""
        return [m["text"].encode("utf-8", "surrogateescape")
                for m in self.fetch("uid text", mailbox=mailbox)]

    def flags(self, mailbox="INBOX"):
        """{uid: set of flags} for every message."""
        return {int(m["uid"]): set(m["flags"].split())
                for m in self.fetch("uid flags", mailbox=mailbox)}

    def add(self, raw, mailbox="INBOX"):
        """Deliver one more message while running (doveadm save)."""
        self.doveadm("save", "-u", self.user, "-m", mailbox, input=raw)

    def expunge_all(self, mailbox="INBOX"):
        self.doveadm("expunge", "-u", self.user, "mailbox", mailbox, "all")

    def remove(self):
        """Delete the instance's folder (after stop())."""
        shutil.rmtree(self.dir, ignore_errors=True)
