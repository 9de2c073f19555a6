"""`openssl s_server` as a TLS peer: a second opinion next to Python's ssl.

    s = SServer(t, pki.leaf("good")).start()
    ... client connects to s.port and sends b"hello\\n" ...
    s.wait_handshake()                 # "CIPHER is"/"Ciphersuite:" seen
    s.wait_output(rb"hello")           # what the client sent (stdout)
    s.send(b"reply\\n")                 # goes to the client (via stdin)
    s.close_stdin()                    # s_server closes the connection

Runs with -brief, so stdin lines are data, never s_server's one-letter
commands. Application data from the client lands on stdout; handshake
facts and errors on stderr (both in s.output(), stdout in s.data()).
"""
import os
import re
import shlex
import time

from .env import fail, wait_listening
from .peers import require


class SServer:
    """An openssl s_server on a free loopback port.

    cert: pki.Cert (its intermediates go to -cert_chain). naccept: exit after
    that many connections (None: serve until stopped). extra_args: more
    s_server options (-tls1_2, -no_tls1_3, -alpn, -verify ...).
    """

    def __init__(self, env, cert, naccept=None, extra_args=(), port=None,
                 host="127.0.0.1", name="s_server"):
        require("openssl")
        self.env = env
        self.cert = cert
        self.port = port or env.port(host)
        self.host = host
        self.name = name
        addr = f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"
        self.argv = ["openssl", "s_server", "-brief", "-accept", addr,
                     "-cert", cert.cert, "-key", cert.key]
        if os.path.getsize(cert.extra_chain) > 0:
            self.argv += ["-cert_chain", cert.extra_chain]
        if getattr(cert, "weak", False):
            self.argv += ["-cipher", "DEFAULT:@SECLEVEL=0"]
        if naccept:
            self.argv += ["-naccept", str(naccept)]
        self.argv += list(extra_args)
        self.proc = None
        self._data_path = env.unique_path(f"{name}.data")

    def start(self, timeout=10.0):
        """Start and wait until it listens (read from /proc, no probe)."""
        # stdout (client data) and stderr (session facts) apart: spawn
        # writes stderr into the log; stdout is redirected by a shell.
        cmd = " ".join(_quote(a) for a in self.argv) + f" > {_quote(self._data_path)}"
        self.proc = self.env.spawn(["/bin/sh", "-c", "exec " + cmd],
                                   name=self.name, stdin="pipe")
        wait_listening(self.port, timeout, self.proc)
        return self

    def stop(self):
        if self.proc is not None:
            self.proc.stop()

    def data(self):
        """Bytes the client sent (s_server's stdout)."""
        try:
            with open(self._data_path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""

    def output(self):
        """s_server's stderr: handshake facts and error lines."""
        return self.proc.log_bytes()

    def send(self, data):
        """Send data to the connected client (through s_server's stdin)."""
        self.proc.write(data)

    def close_stdin(self):
        """EOF on stdin: s_server closes the current connection."""
        self.proc.close_stdin()

    def wait_output(self, pattern, timeout=10.0):
        """Wait until the client's data matches regex pattern (bytes)."""
        rx = re.compile(pattern if isinstance(pattern, bytes)
                        else pattern.encode())
        end = time.monotonic() + timeout
        while not rx.search(self.data()):
            if time.monotonic() > end:
                fail(f"{self.name}: client data never matched {pattern!r}; "
                     f"got {self.data()[-300:]!r}\n{self.proc.tail()}")
            time.sleep(0.02)

    def mark(self):
        """Where the output ends now: since= for the next connection's wait."""
        return self.proc.log_mark()

    def wait_handshake(self, timeout=10.0, since=0):
        """Wait for a completed handshake; return the negotiated suite."""
        m = self.proc.wait_for_log(rb"^(?:Ciphersuite|CIPHER is):? (\S+)|"
                                   rb":error:", timeout, since)
        if m.group(1) is None:
            fail(f"{self.name}: handshake failed\n{self.proc.tail()}")
        return m.group(1).decode()

    def wait_handshake_error(self, timeout=10.0, since=0):
        """Wait for a failed handshake; return s_server's error line."""
        m = self.proc.wait_for_log(rb"^.*:error:.*$", timeout, since)
        return m.group(0).decode(errors="replace")


def _quote(arg):
    return shlex.quote(str(arg))
