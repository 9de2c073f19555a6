"""In-process TLS (and plaintext) test servers with full control of TLS.

Every connection is a Conn: TLS runs over memory BIOs on a plain socket, so
a handler decides exactly when to send close_notify, when to half-close the
TCP stream, and when to switch from plaintext to TLS (STARTTLS). A Conn
records everything the client sent, before and after TLS, and how its input
ended (close_notify, bare TCP EOF, reset).

    srv = echo_server(t, pki.leaf("good"))      # implicit TLS echo
    ... connect to srv.port ...
    c = srv.conn(0)                              # waits until it finished
    c.tls_in, c.eof, c.tls_error

Servers run in daemon threads of the test process; TestEnv cleanup stops
them. A handler exception is recorded in Conn.error and raised again (as a
test failure) by Server.check().
"""
import hashlib
import socket
import ssl
import struct
import threading
import time
import traceback

from .env import fail

READ_SIZE = 65536


class HandshakeFailed(Exception):
    """The TLS handshake with the client failed (see Conn.tls_error)."""


class ScriptFailed(Exception):
    """The client did not do what the handler expected."""


def server_context(cert, min_version=None, max_version=None, ciphers=None,
                   alpn=None, client_ca=None):
    """An ssl.SSLContext serving cert (a pki.Cert, or (chain, key) paths).

    A weak certificate (pki Cert.weak) gets OpenSSL security level 0 so the
    server can load it at all; the client's verification is what is tested.
    min_version/max_version: ssl.TLSVersion values. client_ca: ask for and
    verify a client certificate against this CA file.
    """
    if isinstance(cert, ssl.SSLContext):
        return cert
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    chain, key = (cert.chain, cert.key) if hasattr(cert, "chain") else cert
    weak = getattr(cert, "weak", False)
    if ciphers or weak:
        ctx.set_ciphers((ciphers or "DEFAULT") + (":@SECLEVEL=0" if weak else ""))
    if min_version is not None:
        ctx.minimum_version = min_version
    elif weak:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if max_version is not None:
        ctx.maximum_version = max_version
    ctx.load_cert_chain(chain, key)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(client_ca)
    return ctx


def pattern_bytes(n, offset=0):
    """n deterministic bytes (a counter pattern), for source/sink checks."""
    block = bytes(range(256)) * 64
    start = offset % len(block)
    out = bytearray()
    while len(out) < n:
        out += block[start:start + n - len(out)]
        start = 0
    return bytes(out)


class Conn:
    """One accepted connection; the API a handler uses, and its record.

    Record: plain_in (bytes received before TLS), tls_in (application bytes
    received inside TLS), sent (application bytes sent), transcript
    ([(direction, phase, bytes)]), tls (handshake done), tls_version,
    cipher, tls_error (handshake failure text), eof (None, "close_notify",
    "eof" for a TCP FIN without close_notify, "reset"), pipelined (plaintext
    bytes that followed the STARTTLS command before the handshake),
    bytes_in/sha256_in (of everything received), error (handler failure).
    """

    def __init__(self, sock, server, index, record=True):
        self.sock = sock
        self.server = server
        self.index = index
        self.peer = sock.getpeername()
        self.timeout = server.timeout
        sock.settimeout(self.timeout)
        self.record = record
        self.plain_in = bytearray()
        self.tls_in = bytearray()
        self.sent = bytearray()
        self.transcript = []
        self.tls = False
        self.tls_version = None
        self.cipher = None
        self.tls_error = None
        self.eof = None
        self.pipelined = b""
        self.bytes_in = 0
        self.sha256_in = hashlib.sha256()
        self.error = None
        self.started = time.monotonic()
        self.done = threading.Event()
        self._buf = bytearray()
        self._obj = None
        self._bio_in = ssl.MemoryBIO()
        self._bio_out = ssl.MemoryBIO()
        self._raw_eof = False

    @property
    def received(self):
        """Everything the client sent, plaintext phase then TLS phase."""
        return bytes(self.plain_in) + bytes(self.tls_in)

    # --- raw socket ------------------------------------------------------

    def _recv_raw(self):
        try:
            data = self.sock.recv(READ_SIZE)
        except ConnectionResetError:
            self.eof = "reset"
            return b""
        except socket.timeout:
            raise ScriptFailed(f"client sent nothing for {self.timeout:.0f}s")
        if not data:
            self._raw_eof = True
        return data

    def _flush(self):
        data = self._bio_out.read()
        if data:
            self.sock.sendall(data)

    def _note_in(self, data, phase):
        self.bytes_in += len(data)
        self.sha256_in.update(data)
        if self.record:
            (self.tls_in if phase == "tls" else self.plain_in).extend(data)
            self.transcript.append(("in", phase, bytes(data)))
        self._buf.extend(data)

    def _fill(self):
        """Read more application bytes into the buffer; False at EOF."""
        if self.eof:
            return False
        if self._obj is None:
            data = self._recv_raw()
            if not data:
                self.eof = self.eof or "eof"
                return False
            self._note_in(data, "plain")
            return True
        while True:
            try:
                data = self._obj.read(READ_SIZE)
            except ssl.SSLWantReadError:
                raw = self._recv_raw()
                if raw:
                    self._bio_in.write(raw)
                else:
                    self._bio_in.write_eof()
                self._flush()
                continue
            except ssl.SSLZeroReturnError:
                self.eof = self.eof or ("eof" if self._raw_eof
                                        else "close_notify")
                return False
            except ssl.SSLEOFError:
                self.eof = self.eof or "eof"
                return False
            except ssl.SSLError as e:
                # OpenSSL 3 reports a FIN without close_notify this way.
                kind = "eof" if "UNEXPECTED_EOF" in str(e) else f"tls error: {e}"
                self.eof = self.eof or kind
                return False
            if not data:
                self.eof = self.eof or ("eof" if self._raw_eof
                                        else "close_notify")
                return False
            self._note_in(data, "tls")
            return True

    # --- reading ---------------------------------------------------------

    def read(self, n=READ_SIZE):
        """Up to n bytes (at least one), or b"" at end of input."""
        if not self._buf and not self._fill():
            return b""
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def read_exact(self, n):
        while len(self._buf) < n:
            if not self._fill():
                raise ScriptFailed(f"client closed after {len(self._buf)} of "
                                   f"{n} expected bytes")
        return self.read(n)

    def read_line(self, limit=65536):
        """One line including its line end, or what is left at EOF."""
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                return self.read(i + 1)
            if len(self._buf) > limit:
                raise ScriptFailed(f"line longer than {limit} bytes")
            if not self._fill():
                return self.read(len(self._buf)) if self._buf else b""

    def read_until_eof(self):
        """Read until the client closes; return what came after the buffer."""
        out = bytearray()
        while True:
            data = self.read()
            if not data:
                return bytes(out)
            if self.record:
                out += data

    # --- writing and closing ---------------------------------------------

    def send(self, data):
        """Send bytes in one write (one TLS record set, or one sendall)."""
        if isinstance(data, str):
            data = data.encode()
        if self._obj is None:
            self.sock.sendall(data)
        else:
            self._obj.write(data)
            self._flush()
        self.sent += data
        self.transcript.append(("out", "tls" if self.tls else "plain",
                                bytes(data)))

    def start_tls(self, cert, **ctx_options):
        """Run the server side of a TLS handshake now (implicit or STARTTLS).

        Bytes the client sent after the command and before its ClientHello
        are kept in self.pipelined (and fed to TLS, where they belong if they
        are the ClientHello). Raises HandshakeFailed on failure.
        """
        ctx = server_context(cert, **ctx_options)
        self._obj = ctx.wrap_bio(self._bio_in, self._bio_out, server_side=True)
        if self._buf:
            self.pipelined = bytes(self._buf)
            self._bio_in.write(self.pipelined)
            del self.plain_in[len(self.plain_in) - len(self.pipelined):]
            self._buf.clear()
        while True:
            try:
                self._obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                raw = self._recv_raw()
                if raw:
                    self._bio_in.write(raw)
                else:
                    self._bio_in.write_eof()
            except (ssl.SSLError, OSError) as e:
                self.tls_error = str(e)
                try:
                    self._flush()  # the alert, so the client learns why
                except OSError:
                    pass
                raise HandshakeFailed(self.tls_error) from None
        self._flush()
        self.tls = True
        self.tls_version = self._obj.version()
        self.cipher = self._obj.cipher()[0]

    def close_notify(self):
        """Send a TLS close_notify (once); do not wait for the client's."""
        if self._obj is None:
            return
        try:
            self._obj.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLError):
            pass
        self._flush()

    def shutdown_write(self):
        """Half-close: TCP FIN to the client; reading goes on."""
        self.sock.shutdown(socket.SHUT_WR)

    def abort(self):
        """Close with a TCP reset (SO_LINGER 0)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def describe(self):
        lines = [f"connection #{self.index} from {self.peer}: tls={self.tls} "
                 f"eof={self.eof} tls_error={self.tls_error}"]
        for direction, phase, data in self.transcript[-30:]:
            arrow = "C->S" if direction == "in" else "S->C"
            lines.append(f"  {arrow} [{phase}] {data[:200]!r}")
        if self.error:
            lines.append("  error: " + self.error)
        return "\n".join(lines)


class Server:
    """A threaded TCP server running handler(conn) for each connection.

    It listens and serves as soon as it is constructed.

    cert: serve implicit TLS with it (handshake before handler); None for
    plaintext (the handler may call conn.start_tls()). ctx_options go to
    server_context(). max_conns: stop accepting after that many.
    """

    def __init__(self, env, handler, cert=None, host="127.0.0.1", port=0,
                 max_conns=None, timeout=10.0, record=True, **ctx_options):
        self.env = env
        self.handler = handler
        self.cert = cert
        self.ctx_options = ctx_options
        self.host = host
        self.max_conns = max_conns
        self.timeout = timeout
        self.record = record
        self.conns = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(128)
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        if cert is not None:  # fail early on an unusable certificate
            server_context(cert, **ctx_options)
        self._thread = threading.Thread(target=self._accept_loop, daemon=True,
                                        name=f"server:{self.port}")
        self._thread.start()
        env.on_cleanup(self.stop)

    def start(self):
        """Nothing to do (the server listens from construction on)."""
        return self

    def _accept_loop(self):
        while not self._stop.is_set():
            if self.max_conns is not None and len(self.conns) >= self.max_conns:
                break
            try:
                sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            with self._lock:
                conn = Conn(sock, self, len(self.conns), self.record)
                self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True,
                             name=f"conn:{self.port}:{conn.index}").start()
        self._listener.close()

    def _serve(self, conn):
        try:
            if self.cert is not None:
                conn.start_tls(self.cert, **self.ctx_options)
            self.handler(conn)
        except HandshakeFailed:
            pass
        except ScriptFailed as e:
            conn.error = str(e)
        except OSError as e:
            if not self._stop.is_set():
                conn.error = f"socket error: {e!r}"
        except Exception:
            conn.error = traceback.format_exc()
        finally:
            conn.close()
            conn.done.set()

    def conn(self, index=0, timeout=10.0):
        """Connection number index, once its handler has finished."""
        end = time.monotonic() + timeout
        while len(self.conns) <= index:
            if time.monotonic() > end:
                fail(f"server on port {self.port}: no connection #{index} "
                     f"within {timeout:.0f}s ({len(self.conns)} accepted)")
            time.sleep(0.01)
        c = self.conns[index]
        if not c.done.wait(max(0.0, end - time.monotonic())):
            fail(f"server on port {self.port}: connection #{index} still "
                 f"open after {timeout:.0f}s\n{c.describe()}")
        return c

    def wait_conns(self, n, timeout=10.0):
        """The first n connections, each finished."""
        return [self.conn(i, timeout) for i in range(n)]

    def check(self):
        """Fail the test if any handler recorded an error."""
        bad = [c for c in self.conns if c.error]
        if bad:
            fail("server on port %d: %s" % (
                self.port, "\n".join(c.describe() for c in bad)))

    def stop(self):
        self._stop.set()
        try:
            self._listener.close()
        except OSError:
            pass
        for c in list(self.conns):
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(2.0)


# --- ready-made handlers ---------------------------------------------------

def _finish(conn, close_notify=True):
    """Close politely: close_notify if asked, FIN, drain, close."""
    if close_notify:
        conn.close_notify()
    try:
        conn.shutdown_write()
        conn.read_until_eof()
    except (OSError, ScriptFailed):
        pass


def echo_handler(conn):
    """Send back everything; mirror how the client ended its input."""
    while True:
        data = conn.read()
        if not data:
            break
        conn.send(data)
    _finish(conn, close_notify=conn.eof == "close_notify")


def source_handler(nbytes, close_notify=True, chunk=16384):
    """Send nbytes of pattern_bytes(), then close (with or without
    close_notify); the client's bytes are recorded meanwhile."""
    def handler(conn):
        sent = 0
        while sent < nbytes:
            n = min(chunk, nbytes - sent)
            conn.send(pattern_bytes(n, sent))
            sent += n
        _finish(conn, close_notify)
    return handler


def sink_handler(conn):
    """Read until EOF; the count is conn.bytes_in, the hash conn.sha256_in."""
    conn.read_until_eof()
    _finish(conn, close_notify=conn.eof == "close_notify")


def halfclose_handler(reply=None, close_notify=True):
    """Read until the client's EOF, then still send a reply and close.

    reply: bytes, or a function conn -> bytes; default b"got N bytes\\n".
    The test checks conn.eof (how the client half-closed) and that the
    reply reached the client after its own EOF.
    """
    def handler(conn):
        conn.read_until_eof()
        conn.saw_half_close = conn.eof in ("close_notify", "eof")
        data = reply(conn) if callable(reply) else reply
        if data is None:
            data = b"got %d bytes\n" % conn.bytes_in
        conn.send(data)
        _finish(conn, close_notify)
    return handler


def echo_server(env, cert, **kw):
    return Server(env, echo_handler, cert, **kw)


def source_server(env, cert, nbytes, close_notify=True, **kw):
    return Server(env, source_handler(nbytes, close_notify), cert, **kw)


def sink_server(env, cert, record=False, **kw):
    return Server(env, sink_handler, cert, record=record, **kw)


def halfclose_server(env, cert, reply=None, close_notify=True, **kw):
    return Server(env, halfclose_handler(reply, close_notify), cert, **kw)
