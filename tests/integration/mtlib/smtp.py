"""SMTP and LMTP test servers (python3-aiosmtpd) in a child process.

    smtp = SmtpServer(t, pki.leaf("good"), auth=("user", "pw")).start()
    smtp.ports["smtp"]    # plaintext + STARTTLS
    smtp.ports["smtps"]   # implicit TLS
    ... client sends mail ...
    [m] = smtp.wait_received(1)
    m.mail_from, m.rcpt_tos, m.data, m.tls, m.auth_user, m.listener

    lmtp = SmtpServer(t, None, smtp=False, smtps=False, lmtp=True,
                      lmtp_unix=True).start()
    lmtp.ports["lmtp"], lmtp.lmtp_socket

AUTH (PLAIN and LOGIN, one fixed user) is offered only inside TLS. The
server can be told at run time to refuse (set_behaviour) so delivery tests
can check retries and bounces.
"""
import json
import os
import re

from .env import fail, wait_listening, wait_until
from .peers import PYTHON, require

CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                     "smtpd_child.py")


class Received:
    """One accepted message: envelope, bytes and session facts."""

    def __init__(self, meta, data):
        self.seq = meta["seq"]
        self.listener = meta["listener"]
        self.mail_from = meta["mail_from"]
        self.rcpt_tos = meta["rcpt_tos"]
        self.mail_options = meta["mail_options"]
        self.rcpt_options = meta["rcpt_options"]
        self.helo = meta["helo"]
        self.peer = meta["peer"]
        self.tls = meta["tls"]
        self.auth_user = meta["auth_user"]
        self.data = data

    def header(self, name):
        """Value of a header of the message, or None."""
        from .mail import header
        return header(self.data, name)

    def __repr__(self):
        return (f"<Received #{self.seq} via {self.listener} from "
                f"{self.mail_from} to {self.rcpt_tos}, {len(self.data)} bytes>")


class SmtpServer:
    """aiosmtpd listeners sharing one spool; configure, then start().

    cert: pki.Cert for STARTTLS and SMTPS (None: no TLS at all, for LMTP).
    auth: (user, password) to offer AUTH PLAIN/LOGIN after TLS;
    auth_required: refuse MAIL before AUTH. require_starttls: refuse
    commands before STARTTLS on the plaintext listener. smtp / smtps / lmtp:
    which TCP listeners to open (ports: fixed port numbers by name).
    lmtp_unix: also serve LMTP on a unix socket (a path, or True for one
    in the test folder).
    """

    def __init__(self, env, cert, auth=None, auth_required=False,
                 require_starttls=False, smtp=True, smtps=True, lmtp=False,
                 lmtp_unix=False, ports=None, host="127.0.0.1",
                 hostname="mail.test", size_limit=None, name="smtpd"):
        require("python3-aiosmtpd")
        self.env = env
        self.cert = cert
        self.dir = env.unique_path(name)
        os.makedirs(self.dir)
        self.spool = os.path.join(self.dir, "spool")
        os.makedirs(self.spool, exist_ok=True)
        self.control = os.path.join(self.dir, "control.json")
        self.ports = {}
        self.lmtp_socket = None
        fixed = ports or {}
        listeners = []
        for lname, on, kind, tls in (("smtp", smtp, "smtp", "starttls"),
                                     ("smtps", smtps, "smtp", "implicit"),
                                     ("lmtp", lmtp, "lmtp", None)):
            if not on:
                continue
            if tls and cert is None:
                fail(f"SmtpServer: listener {lname} needs a certificate")
            self.ports[lname] = fixed.get(lname) or env.port(host)
            listeners.append({"name": lname, "kind": kind, "tls": tls,
                              "host": host, "port": self.ports[lname]})
        if lmtp_unix:
            self.lmtp_socket = (lmtp_unix if isinstance(lmtp_unix, str)
                                else os.path.join(self.dir, "lmtp.sock"))
            listeners.append({"name": "lmtp_unix", "kind": "lmtp",
                              "tls": None, "path": self.lmtp_socket})
        self.conf = {
            "spool": self.spool, "control": self.control,
            "listeners": listeners, "hostname": hostname,
            "require_starttls": require_starttls,
            "auth_required": auth_required, "size_limit": size_limit,
            "auth": ({"user": auth[0], "password": auth[1]} if auth else None),
            "chain": cert.chain if cert else None,
            "key": cert.key if cert else None,
            "weak": bool(getattr(cert, "weak", False)),
        }
        self.proc = None

    def start(self, timeout=15.0):
        path = os.path.join(self.dir, "config.json")
        with open(path, "w") as f:
            json.dump(self.conf, f, indent=1)
        self.proc = self.env.spawn([PYTHON, CHILD, path], name="smtpd",
                                   log=os.path.join(self.dir, "smtpd.log"))
        self.env.on_cleanup(self.stop)
        self.proc.wait_for_log(r"^ready$", timeout)
        wait_listening(list(self.ports.values()), timeout, self.proc)
        return self

    def stop(self):
        if self.proc is not None and self.proc.alive:
            self.proc.stop()

    # --- behaviour at run time -------------------------------------------

    def set_behaviour(self, mail_reply=None, rcpt_reject=None,
                      data_reply=None, lmtp_replies=None):
        """Change how the next transactions are answered.

        mail_reply: reply to every MAIL FROM (e.g. "451 4.3.0 busy").
        rcpt_reject: {address: reply} for RCPT TO. data_reply: reply after
        DATA, and the message is not stored. lmtp_replies: LMTP replies for
        the recipients in order (missing ones get 250). Call with no
        argument to go back to accepting everything.
        """
        conf = {k: v for k, v in (("mail_reply", mail_reply),
                                  ("rcpt_reject", rcpt_reject),
                                  ("data_reply", data_reply),
                                  ("lmtp_replies", lmtp_replies)) if v}
        tmp = self.control + ".tmp"
        with open(tmp, "w") as f:
            json.dump(conf, f)
        os.rename(tmp, self.control)

    # --- what was received -----------------------------------------------

    def received(self):
        """Every message accepted so far, in arrival order."""
        out = []
        for name in sorted(os.listdir(self.spool)):
            if not re.fullmatch(r"\d{6}\.json", name):
                continue
            base = os.path.join(self.spool, name[:-5])
            with open(base + ".json") as f:
                meta = json.load(f)
            with open(base + ".eml", "rb") as f:
                out.append(Received(meta, f.read()))
        return out

    def wait_received(self, n, timeout=10.0):
        """Wait until at least n messages arrived; return them all."""
        wait_until(lambda: len(self.received()) >= n, timeout,
                   f"{n} message(s) at the SMTP server")
        return self.received()
