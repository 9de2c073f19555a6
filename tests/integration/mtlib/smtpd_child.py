"""SMTP/LMTP test server process (python3-aiosmtpd); started by smtp.py.

usage: /usr/bin/python3 smtpd_child.py CONFIG.json

Listens on every listener of the configuration, prints "ready" on stdout,
and stores each accepted message into the spool folder as NNNNNN.eml (the
bytes received) plus NNNNNN.json (the envelope and session facts), the JSON
last so a reader never sees half a message. Before each MAIL, RCPT and DATA
it re-reads the control file, which the test may rewrite to make the server
refuse (see SmtpServer.set_behaviour).
"""
import asyncio
import json
import logging
import os
import signal
import ssl
import sys

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def _load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return {}


class Spool:
    """The aiosmtpd handler of one listener; all listeners share a counter."""

    counter = 0

    def __init__(self, conf, listener):
        self.conf = conf
        self.listener = listener
        self.spool = conf["spool"]
        self.control = conf["control"]

    def _behaviour(self):
        return _load(self.control)

    async def handle_MAIL(self, server, session, envelope, address, options):
        reply = self._behaviour().get("mail_reply")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):
        rejects = self._behaviour().get("rcpt_reject", {})
        if address in rejects:
            return rejects[address]
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        b = self._behaviour()
        lmtp = self.listener["kind"] == "lmtp"
        reply = b.get("data_reply")
        if reply:
            if lmtp:
                return "\r\n".join([reply] * len(envelope.rcpt_tos))
            return reply
        self._store(session, envelope, server)
        if lmtp:
            replies = list(b.get("lmtp_replies") or [])
            replies += ["250 2.0.0 OK stored"] * len(envelope.rcpt_tos)
            return "\r\n".join(replies[:len(envelope.rcpt_tos)])
        return "250 2.0.0 OK stored"

    def _store(self, session, envelope, server):
        Spool.counter += 1
        base = os.path.join(self.spool, "%06d" % Spool.counter)
        content = envelope.original_content or envelope.content or b""
        with open(base + ".eml", "wb") as f:
            f.write(content)
        auth = session.auth_data
        if isinstance(auth, LoginPassword):
            auth = auth.login.decode("utf-8", "replace")
        meta = {
            "seq": Spool.counter,
            "listener": self.listener["name"],
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "mail_options": list(envelope.mail_options),
            "rcpt_options": list(envelope.rcpt_options),
            "helo": session.host_name,
            "peer": str(session.peer),
            "tls": bool(self.listener.get("tls") == "implicit" or session.ssl),
            "auth_user": auth if session.authenticated else None,
        }
        with open(base + ".tmp", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".tmp", base + ".json")


def _authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = (auth_data.login.decode("utf-8", "replace") == user
              and auth_data.password.decode("utf-8", "replace") == password)
        return AuthResult(success=ok, handled=False, auth_data=auth_data)
    return check


def _context(conf):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if conf.get("weak"):
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.load_cert_chain(conf["chain"], conf["key"])
    return ctx


def _factory(conf, listener, ctx, loop):
    handler = Spool(conf, listener)
    auth = conf.get("auth")
    implicit = listener.get("tls") == "implicit"
    cls = LMTP if listener["kind"] == "lmtp" else SMTP
    kwargs = dict(hostname=conf.get("hostname", "mail.test"), loop=loop,
                  decode_data=False)
    if conf.get("size_limit"):
        kwargs["data_size_limit"] = conf["size_limit"]
    if listener.get("tls") == "starttls":
        kwargs.update(tls_context=ctx,
                      require_starttls=conf.get("require_starttls", False))
    if auth:
        kwargs.update(authenticator=_authenticator(auth["user"],
                                                   auth["password"]),
                      auth_required=conf.get("auth_required", False),
                      auth_require_tls=not implicit)
    return lambda: cls(handler, **kwargs)


async def _serve(conf):
    loop = asyncio.get_running_loop()
    ctx = _context(conf) if conf.get("chain") else None
    servers = []
    for listener in conf["listeners"]:
        factory = _factory(conf, listener, ctx, loop)
        if listener.get("path"):
            srv = await loop.create_unix_server(factory, path=listener["path"])
        else:
            srv = await loop.create_server(
                factory, host=listener["host"], port=listener["port"],
                ssl=ctx if listener.get("tls") == "implicit" else None,
                reuse_address=True)
        servers.append(srv)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    for srv in servers:
        srv.close()


def main():
    # aiosmtpd warns about its own deprecated attribute on every AUTH.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    with open(sys.argv[1]) as f:
        conf = json.load(f)
    asyncio.run(_serve(conf))


if __name__ == "__main__":
    main()
