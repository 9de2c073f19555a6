#!/usr/bin/python3
"""The process: -t, the command line, running as a daemon with a pid file,
SIGHUP reload with live connections, a refused reload, SIGUSR1 log
reopen, SIGTERM drain, a second SIGTERM."""
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mtlib  # noqa: E402
from mtlib import (Mailtunnel, check_config, expect_equal, fail,  # noqa: E402
                   tlsserver, wait_closed, wait_listening,
                   wait_until)
from mtlib.daemon import binary  # noqa: E402


def service(name, port, backend, pki, extra=""):
    return (f"\n[{name}]\nclient = yes\naccept = 127.0.0.1:{port}\n"
            f"connect = 127.0.0.1:{backend}\nCAfile = {pki.ca}\n"
            f"checkHost = mail.test\n{extra}\n")


def ping(s, data):
    s.sendall(data)
    got = b""
    while not got.endswith(b"\n"):
        chunk = s.recv(1000)
        if not chunk:
            break
        got += chunk
    return got


def gone(pid):
    """Exited: no process, or a zombie (the test reaps its orphans)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    if state == "Z":
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        return True
    return False


def open_conn(port):
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def cli_cases(t, pki):
    good = service("a", t.port(), 1, pki)
    with t.case("-t on a good file: exit 0, says OK"):
        code, out = check_config(t, good)
        expect_equal("exit", code, 0)
        if "OK (1 service)" not in out:
            fail(out)
    with t.case("-t on a broken file: exit 78, every problem with file:line"):
        code, out = check_config(t, "bogus = 1\n[a]\nclient = no\n"
                                 "CAfile = /nonexistent/ca.pem\n")
        expect_equal("exit", code, 78)
        for want in (":1: error: unknown option 'bogus'",
                     ":3: error: [a] client: server mode"):
            if want not in out:
                fail(f"missing {want!r} in:\n{out}")
    with t.case("-t catches TLS problems: a CAfile that does not exist"):
        code, out = check_config(t, service("a", t.port(), 1, pki).replace(
            pki.ca, "/nonexistent/ca.pem"))
        expect_equal("exit", code, 78)
        if "/nonexistent/ca.pem" not in out or ":6:" not in out:
            fail(out)
    with t.case("-t -v prints the effective configuration"):
        path = t.write("v.conf", good)
        r = t.run([binary(), "-t", "-v", path])
        if b"TIMEOUTidle = 12h" not in r.stdout or b"[a]" not in r.stdout:
            fail(r.stdout.decode())
    with t.case("--version names OpenSSL and libevent"):
        out = t.run([binary(), "--version"]).stdout.decode()
        if "OpenSSL 3" not in out or "libevent 2.1" not in out:
            fail(out)
    with t.case("usage errors exit 64"):
        r = t.run([binary(), "--no-such-option"], check=False)
        expect_equal("exit", r.returncode, 64)
        r = t.run([binary(), "a.conf", "b.conf"], check=False)
        expect_equal("exit", r.returncode, 64)
    with t.case("a missing file: exit 78 and the reason"):
        r = t.run([binary(), "-f", "/nonexistent.conf"], check=False)
        expect_equal("exit", r.returncode, 78)
        if b"/nonexistent.conf: error: cannot open" not in r.stderr:
            fail(r.stderr.decode())


def daemon_cases(t, pki, echo):
    port = t.port()
    pid = t.path("mt.pid")
    conf = t.write("daemon.conf", f"pid = {pid}\noutput = {t.path('d.log')}\n"
                   + service("d", port, echo.port, pki))
    with t.case("as a daemon: the parent returns 0, pid file, serves"):
        r = subprocess.run([binary(), conf], timeout=20)
        expect_equal("exit", r.returncode, 0)
        wait_listening([port])
        daemon_pid = int(open(pid).read())
        with open_conn(port) as s:
            expect_equal("echo", ping(s, b"hi\n"), b"hi\n")
        os.kill(daemon_pid, 15)
        wait_until(lambda: gone(daemon_pid), 10, "the daemon to exit")
        if os.path.exists(pid):
            fail("pid file left behind")
    with t.case("as a daemon: a port already in use fails in the parent"):
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        busy = blocker.getsockname()[1]
        conf2 = t.write("busy.conf", service("b", busy, echo.port, pki))
        r = subprocess.run([binary(), conf2], capture_output=True, timeout=20)
        blocker.close()
        expect_equal("exit", r.returncode, 71)
        if b"cannot listen on 127.0.0.1:%d" % busy not in r.stderr:
            fail(r.stderr.decode())


def sharing_cases(t, pki, echo):
    port = t.port()
    first = Mailtunnel(t, service("one", port, echo.port, pki),
                       name="first").start(wait_ports=[port])
    with t.case("a second daemon on the same address fails; no silent "
                "sharing through SO_REUSEPORT"):
        path = t.write("second.conf", service("two", port, echo.port, pki))
        r = subprocess.run([binary(), "-f", path], capture_output=True,
                           timeout=20)
        expect_equal("exit", r.returncode, 71)
        if b"cannot listen on 127.0.0.1:%d: Address already in use" % port \
                not in r.stderr:
            fail(r.stderr.decode())
    expect_equal("exit", first.stop(), 0)


def reload_cases(t, pki, echo, echo2):
    pa, pb, pc = t.port(), t.port(), t.port()
    log = t.path("mt-output.log")
    base = f"debug = info\noutput = {log}\n"
    mt = Mailtunnel(t, base + service("a", pa, echo.port, pki) +
                    service("b", pb, echo.port, pki)).start(
        wait_ports=[pa, pb])
    live = open_conn(pa)
    with t.case("reload: live connection kept, services added/changed/"
                "removed"):
        expect_equal("before", ping(live, b"one\n"), b"one\n")
        mark = len(open(log).read())
        mt.write_config(base + service("a", pa, echo2.port, pki) +
                        service("c", pc, echo.port, pki))
        mt.reload()
        wait_until(lambda: "configuration reloaded: 2 services (1 new, "
                   "1 removed)" in open(log).read()[mark:], 10, "reload")
        wait_listening([pc])
        wait_closed([pb])
        expect_equal("old connection", ping(live, b"two\n"), b"two\n")
        with open_conn(pa) as s:
            expect_equal("new connection", ping(s, b"x\n"), b"x\n")
        wait_until(lambda: len(echo2.conns) >= 1, 5,
                   "the new connection to reach the new backend")
    with t.case("a broken reload keeps the running configuration"):
        mark = len(open(log).read())
        mt.write_config(base + "[a]\nclient = yes\naccept = nonsense\n")
        mt.reload()
        wait_until(lambda: "reload failed (1 error); the running "
                   "configuration stays in use" in open(log).read()[mark:],
                   10, "the refusal")
        with open_conn(pa) as s:
            expect_equal("still serving", ping(s, b"y\n"), b"y\n")
        expect_equal("live connection", ping(live, b"three\n"), b"three\n")
    with t.case("SIGUSR1 reopens the log file"):
        os.rename(log, log + ".1")
        mt.signal("USR1")
        wait_until(lambda: os.path.exists(log) and
                   "log file reopened" in open(log).read(), 10, "reopen")
    with t.case("SIGTERM: stop accepting, let the open one finish, exit 0"):
        mt.signal("TERM")
        wait_closed([pa, pc])
        expect_equal("still open", ping(live, b"last\n"), b"last\n")
        live.close()
        expect_equal("exit", mt.wait_exit(10), 0)


def drain_cases(t, pki, echo):
    port = t.port()
    mt = Mailtunnel(t, service("x", port, echo.port, pki,
                               "TIMEOUTclose = 2")).start(wait_ports=[port])
    with t.case("SIGTERM with an idle connection: closed after TIMEOUTclose"):
        s = open_conn(port)
        ping(s, b"a\n")
        start = time.monotonic()
        mt.signal("TERM")
        expect_equal("exit", mt.wait_exit(10), 0)
        took = time.monotonic() - start
        if not 1.5 < took < 5:
            fail(f"exited after {took:.1f}s, want about 2s")
        s.close()
    mt = Mailtunnel(t, service("y", port, echo.port, pki,
                               "TIMEOUTclose = 60"), name="mt2").start(
        wait_ports=[port])
    with t.case("a second SIGTERM closes connections at once"):
        s = open_conn(port)
        ping(s, b"a\n")
        mt.signal("TERM")
        time.sleep(0.3)
        mt.signal("TERM")
        expect_equal("exit", mt.wait_exit(5), 0)
        s.close()


def debug_cases(t, pki, echo):
    """stunnel's service-level debug: a level of the service's own."""
    ports = {name: t.port() for name in ("loud", "quiet", "plain")}
    conf = "debug = notice\n" + \
        service("loud", ports["loud"], echo.port, pki, "debug = debug") + \
        service("quiet", ports["quiet"], echo.port, pki, "debug = 3") + \
        service("plain", ports["plain"], echo.port, pki)
    mt = Mailtunnel(t, conf, name="mt-debug").start(
        wait_ports=list(ports.values()))
    with t.case("debug in a section sets that service's log level"):
        for name, port in ports.items():
            with open_conn(port) as s:
                expect_equal(name, ping(s, b"hi\n"), b"hi\n")
        # At debug, [loud] tells the close; the close line is at info.
        mt.wait_for_log(r"debug: \[loud\] #\d+ 127\.0\.0\.1:\d+: client "
                        r"finished sending")
        mt.wait_for_log(r"info: \[loud\] #\d+ .*closed after")
        wait_until(lambda: len(echo.conns) >= 3 and
                   all(c.done.is_set() for c in echo.conns[-3:]), 10,
                   "the three connections to end")
        time.sleep(0.3)
        expect_equal("exit", mt.stop(), 0)
        log = mt.log_text()
        for name in ("quiet", "plain"):
            if f"[{name}]" in log:
                fail(f"[{name}] logged below its level:\n{log}")


def main(t):
    pki = t.pki()
    echo = tlsserver.echo_server(t, pki.leaf("good"))
    echo2 = tlsserver.echo_server(t, pki.leaf("good"))
    cli_cases(t, pki)
    daemon_cases(t, pki, echo)
    sharing_cases(t, pki, echo)
    reload_cases(t, pki, echo, echo2)
    drain_cases(t, pki, echo)
    debug_cases(t, pki, echo)


mtlib.run(main)
