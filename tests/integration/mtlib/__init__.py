"""mtlib: fixtures for mailtunnel's integration tests (see ../README.md).

    import os, sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import mtlib
    from mtlib import Dovecot, SmtpServer, Mailtunnel, fail

    def main(t):
        pki = t.pki()
        ...
    mtlib.run(main)
"""
from .env import (Interrupted, Proc, TestEnv, TestFailure, builddir,
                  expect_equal, expect_raises, fail, free_port, free_port6,
                  is_listening, srcdir, wait_closed, wait_listening,
                  wait_until)
from .runner import current, run
from .peers import require, require_root
from .pki import PKI, VARIANTS, Cert
from .mail import make_message, make_messages, message_id
from .dovecot import Dovecot
from .smtp import Received, SmtpServer
from .sserver import SServer
from .tlsserver import (Conn, Server, echo_server, halfclose_server,
                        pattern_bytes, server_context, sink_server,
                        source_server)
from .script import ScriptedServer
from .daemon import Mailtunnel, check_config
from .netns import GMAIL_NAMES, Namespace, trust_ca

__all__ = [
    "Interrupted", "Proc", "TestEnv", "TestFailure", "builddir",
    "expect_equal", "expect_raises", "fail",
    "free_port", "free_port6", "is_listening", "srcdir", "wait_closed",
    "wait_listening", "wait_until", "current", "run", "require",
    "require_root", "PKI", "VARIANTS", "Cert", "make_message",
    "make_messages", "message_id", "Dovecot", "Received", "SmtpServer",
    "SServer", "Conn", "Server", "echo_server", "halfclose_server",
    "pattern_bytes", "server_context", "sink_server", "source_server",
    "ScriptedServer", "Mailtunnel", "check_config", "GMAIL_NAMES",
    "Namespace", "trust_ca",
]
