"""One test's world: its temporary folder, its child processes, its ports.

A test owns exactly one TestEnv (see run() in runner.py). Everything a test
starts goes through TestEnv.spawn() or TestEnv.run(): each child gets its own
session and process group, and TestEnv.cleanup() kills every group that is
still alive (TERM, then KILL after a grace period), then sweeps up any
daemonised descendant that escaped its group (the test process is a child
subreaper), then removes the folder unless MT_KEEP=1.
"""
import atexit
import contextlib
import ctypes
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

_PR_SET_CHILD_SUBREAPER = 36

# The grace a process group gets between SIGTERM and SIGKILL.
STOP_GRACE = 3.0


class TestFailure(Exception):
    """A test expectation did not hold. Its message is the whole report."""


class Interrupted(BaseException):
    """The test process got a terminating signal (SIGTERM, SIGINT, SIGHUP)."""


def fail(message):
    """Stop the current test (or case) with a failure message."""
    raise TestFailure(message)


def expect_equal(what, got, want):
    """Fail with both values unless got == want."""
    if got != want:
        fail(f"{what}: got {got!r}, want {want!r}")


def expect_raises(exc_type, fn, *args, **kwargs):
    """Call fn(*args, **kwargs); fail unless it raises exc_type.

    Returns the exception, for checks on its message or fields.
    """
    try:
        fn(*args, **kwargs)
    except exc_type as e:
        return e
    name = getattr(fn, "__qualname__", repr(fn))
    fail(f"{name} did not raise {getattr(exc_type, '__name__', exc_type)}")


def _repo_root():
    return os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))))


def builddir():
    """Top build folder: $MT_BUILDDIR, else the repository holding mtlib."""
    return os.environ.get("MT_BUILDDIR") or _repo_root()


def srcdir():
    """Top source folder: $MT_SRCDIR, else the repository holding mtlib."""
    return os.environ.get("MT_SRCDIR") or _repo_root()


# --- ports ---------------------------------------------------------------

_handed_out = set()


def _ephemeral_floor():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host="127.0.0.1"):
    """A TCP port that was free on host a moment ago.

    Taken at random below the kernel's ephemeral range and never twice in
    one test: a port left to the kernel (bind to port 0) can come back at
    once to the next port-0 bind, so a port handed out for mailtunnel to
    listen on later could meanwhile go to a scripted server or to an
    outgoing connection of this very test."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    top = min(_ephemeral_floor(), 65536)
    low = 10000 if top > 12000 else 1024
    rng = random.SystemRandom()
    for _ in range(1000):
        port = rng.randrange(low, top)
        if port in _handed_out:
            continue
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port on {host} in {low}-{top - 1}")


def free_port6():
    """A TCP port that was free on ::1 a moment ago."""
    return free_port("::1")


def _proc_net_listeners():
    """(address, port) of every TCP socket in LISTEN state in our netns.

    Reading /proc instead of connecting keeps the probe invisible to the
    server: no accept, no log line, no upstream connection from a proxy.
    """
    found = set()
    for name, width in (("tcp", 8), ("tcp6", 32)):
        try:
            with open("/proc/net/" + name) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 4 or fields[3] != "0A":
                continue
            addr, port = fields[1].split(":")
            found.add((_decode_proc_addr(addr, width), int(port, 16)))
    return found


def _decode_proc_addr(hexaddr, width):
    raw = bytes.fromhex(hexaddr)
    # /proc prints each 32-bit word in host (little-endian) order.
    words = [raw[i:i + 4][::-1] for i in range(0, len(raw), 4)]
    packed = b"".join(words)
    if width == 8:
        return socket.inet_ntop(socket.AF_INET, packed)
    return socket.inet_ntop(socket.AF_INET6, packed)


def is_listening(port, host=None):
    """True if some socket listens on port (on host, or on any address)."""
    for addr, p in _proc_net_listeners():
        if p != port:
            continue
        if host is None or addr == host or addr in ("0.0.0.0", "::"):
            return True
    return False


def wait_listening(ports, timeout=10.0, proc=None, host=None):
    """Wait until every port listens; fail with proc's log if it does not.

    If proc is given and exits while we wait, fail at once with its log.
    """
    ports = [ports] if isinstance(ports, int) else list(ports)
    end = time.monotonic() + timeout
    while True:
        missing = [p for p in ports if not is_listening(p, host)]
        if not missing:
            return
        if proc is not None and proc.poll() is not None:
            fail(f"{proc.name} exited with code {proc.returncode} before "
                 f"listening on {missing}\n{proc.tail()}")
        if time.monotonic() > end:
            what = f"{proc.name} " if proc is not None else ""
            detail = ("\n" + proc.tail()) if proc is not None else ""
            fail(f"{what}not listening on port(s) {missing} after "
                 f"{timeout:.0f}s{detail}")
        time.sleep(0.02)


def wait_closed(ports, timeout=10.0):
    """Wait until no socket listens on any of the ports."""
    ports = [ports] if isinstance(ports, int) else list(ports)
    end = time.monotonic() + timeout
    while any(is_listening(p) for p in ports):
        if time.monotonic() > end:
            fail(f"port(s) {[p for p in ports if is_listening(p)]} still "
                 f"listening after {timeout:.0f}s")
        time.sleep(0.02)


def wait_until(predicate, timeout=10.0, what="condition", interval=0.02):
    """Poll predicate() until it returns a true value, which is returned."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            fail(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


# --- processes -----------------------------------------------------------

def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _become_subreaper():
    """Orphaned descendants (daemons that double-fork) reparent to us."""
    try:
        _libc().prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _children_of(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split after it.
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


def _signal_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return False


class Proc:
    """A child process in its own process group (made by TestEnv.spawn()).

    Its stdout and stderr both go to log_path, in the order written.
    """

    def __init__(self, env, argv, name, log_path, popen):
        self.env = env
        self.argv = list(argv)
        self.name = name
        self.log_path = log_path
        self._popen = popen
        self.pid = popen.pid
        self.pgid = popen.pid  # start_new_session: the child leads its group

    # state
    def poll(self):
        return self._popen.poll()

    @property
    def returncode(self):
        return self._popen.returncode

    @property
    def alive(self):
        return self._popen.poll() is None

    @property
    def stdin(self):
        return self._popen.stdin

    # control
    def signal(self, sig, group=False):
        """Send sig ("HUP", "USR1", signal.SIGTERM ...) to the process."""
        if isinstance(sig, str):
            sig = getattr(signal, "SIG" + sig.upper().removeprefix("SIG"))
        if self.poll() is not None:
            fail(f"cannot send {signal.Signals(sig).name} to {self.name}: it "
                 f"exited with code {self.returncode}\n{self.tail()}")
        if group:
            _signal_group(self.pgid, sig)
        else:
            os.kill(self.pid, sig)

    def wait(self, timeout=10.0):
        """Wait for exit and return the exit code (-N for signal N)."""
        try:
            return self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            fail(f"{self.name} still running after {timeout:.1f}s\n"
                 f"{self.tail()}")

    def stop(self, grace=STOP_GRACE):
        """TERM the group, KILL it after grace (at once if 0); return the code."""
        if self._popen.stdin and not self._popen.stdin.closed:
            try:
                self._popen.stdin.close()
            except OSError:
                pass
        if grace > 0 and _signal_group(self.pgid, signal.SIGTERM):
            try:
                self._popen.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # Members of the group may outlive the leader: KILL them all.
        _signal_group(self.pgid, signal.SIGKILL)
        try:
            return self._popen.wait(5.0)
        except subprocess.TimeoutExpired:
            return None

    def write(self, data):
        """Write bytes to the process's stdin (spawned with stdin="pipe")."""
        if isinstance(data, str):
            data = data.encode()
        self._popen.stdin.write(data)
        self._popen.stdin.flush()

    def close_stdin(self):
        self._popen.stdin.close()

    # output
    def log_bytes(self):
        if not self.log_path:
            return b""
        try:
            with open(self.log_path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""

    def log_text(self):
        return self.log_bytes().decode("utf-8", "replace")

    def log_mark(self):
        """The current end of the log; pass it as since= to wait_for_log()."""
        return len(self.log_bytes())

    def tail(self, lines=40):
        text = self.log_text().splitlines()[-lines:]
        head = f"--- last lines of {self.name} output ({self.log_path}) ---"
        return "\n".join([head] + text + ["--- end ---"])

    def wait_for_log(self, pattern, timeout=10.0, since=0):
        """Wait until the log (from byte offset since) matches regex pattern.

        Returns the re.Match. Fails with the log tail on timeout, or at once
        if the process exits without the line appearing.
        """
        rx = re.compile(pattern.encode() if isinstance(pattern, str)
                        else pattern, re.MULTILINE)
        end = time.monotonic() + timeout
        while True:
            m = rx.search(self.log_bytes(), since)
            if m:
                return m
            exited = self.poll() is not None
            if exited or time.monotonic() > end:
                if exited:  # one last look: output may land just before exit
                    m = rx.search(self.log_bytes(), since)
                    if m:
                        return m
                why = (f"exited with code {self.returncode}" if exited
                       else f"after {timeout:.1f}s")
                fail(f"{self.name}: no log line matching {pattern!r} "
                     f"({why})\n{self.tail()}")
            time.sleep(0.02)

    def rss_kib(self):
        """Resident set size of the process in KiB, from /proc/PID/status."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        fail(f"{self.name}: no VmRSS in /proc/{self.pid}/status")


def _pdeathsig_prefix():
    """setpriv --pdeathsig makes a child die with us even on SIGKILL.

    The signal follows the *thread* that forked, so it is only safe from the
    main thread (helper threads come and go).
    """
    if threading.current_thread() is not threading.main_thread():
        return []
    if not os.path.exists("/usr/bin/setpriv"):
        return []
    return ["/usr/bin/setpriv", "--pdeathsig", "TERM", "--"]


_live_envs = []


class TestEnv:
    """The temporary folder, processes and cleanup of one test script.

    A test has one (made by run()); a second one, for a self-test of the
    cleanup, leaves the first one's processes alone.
    """

    def __init__(self, name):
        self.name = name
        base = tempfile.mkdtemp(prefix=f"mt-{name[:20]}-")
        # Dovecot's unprivileged processes must be able to walk into it.
        os.chmod(base, 0o755)
        self.dir = base
        self.keep = os.environ.get("MT_KEEP", "") not in ("", "0")
        self.procs = []
        self._cleanups = []
        self._cleaned = False
        self._pki = None
        self.passed = []
        self.failed = []
        _live_envs.append(self)
        _become_subreaper()
        atexit.register(self.cleanup)

    def path(self, *parts):
        """A path inside the test folder (nothing is created)."""
        return os.path.join(self.dir, *parts)

    def mkdir(self, *parts, mode=0o755):
        p = self.path(*parts)
        os.makedirs(p, exist_ok=True)
        os.chmod(p, mode)
        return p

    def write(self, relpath, data, mode=0o644):
        """Write a file (str or bytes) in the test folder; return its path."""
        p = self.path(relpath)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(p, mode)
        return p

    port = staticmethod(free_port)
    port6 = staticmethod(free_port6)

    def pki(self):
        """The test PKI, made once per test process (see pki.py)."""
        if self._pki is None:
            from .pki import PKI
            self._pki = PKI(self.mkdir("pki"))
        return self._pki

    @contextlib.contextmanager
    def case(self, name):
        """A named check: a failure inside is reported and the test goes on.

        Prints PASS/FAIL lines; run() exits 1 if any case failed.
        """
        start = time.monotonic()
        try:
            yield
        except TestFailure as e:
            self.failed.append(name)
            print(f"FAIL: {name}: {e}", file=sys.stderr, flush=True)
        except Exception:
            self.failed.append(name)
            print(f"FAIL: {name}: unexpected error\n{traceback.format_exc()}",
                  file=sys.stderr, flush=True)
        else:
            self.passed.append(name)
            print(f"PASS: {name} ({time.monotonic() - start:.2f}s)", flush=True)

    def on_cleanup(self, fn):
        """Call fn() at cleanup, before processes are killed (LIFO order)."""
        self._cleanups.append(fn)
        return fn

    def spawn(self, argv, name=None, stdin=None, env=None, cwd=None,
              log=None, pdeathsig=True):
        """Start argv in its own process group; return a Proc.

        stdin: None (/dev/null) or "pipe". Output (stdout and stderr) goes
        to log (a path; default NAME.log in the test folder). env entries are
        added to os.environ (a None value removes the variable).
        """
        name = name or os.path.basename(argv[0])
        log_path = log or self.unique_path(f"{name}.log")
        full_env = dict(os.environ)
        for k, v in (env or {}).items():
            if v is None:
                full_env.pop(k, None)
            else:
                full_env[k] = str(v)
        prefix = _pdeathsig_prefix() if pdeathsig else []
        with open(log_path, "ab") as out:
            popen = subprocess.Popen(
                prefix + [str(a) for a in argv],
                stdin=subprocess.PIPE if stdin == "pipe" else subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, env=full_env,
                cwd=cwd or self.dir, start_new_session=True)
        proc = Proc(self, argv, name, log_path, popen)
        self.procs.append(proc)
        return proc

    def unique_path(self, relpath):
        """A path in the test folder that does not exist yet (name.2.ext...)."""
        p = self.path(relpath)
        stem, ext = os.path.splitext(p)
        n = 1
        while os.path.exists(p):
            n += 1
            p = f"{stem}.{n}{ext}"
        return p

    def run(self, argv, check=True, timeout=60.0, input=None, env=None,
            cwd=None):
        """Run a short command to completion; return CompletedProcess.

        Output is captured as bytes (stdout and stderr apart). With check,
        a non-zero exit fails the test with both outputs shown. A command
        that outlives timeout has its whole process group killed.
        """
        full_env = dict(os.environ)
        full_env.update({k: str(v) for k, v in (env or {}).items()})
        popen = subprocess.Popen(
            [str(a) for a in argv], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env,
            cwd=cwd or self.dir, start_new_session=True)
        try:
            out, err = popen.communicate(input, timeout)
        except subprocess.TimeoutExpired:
            _signal_group(popen.pid, signal.SIGKILL)
            popen.communicate()
            fail(f"command timed out after {timeout:.0f}s: {' '.join(map(str, argv))}")
        finally:
            _signal_group(popen.pid, signal.SIGKILL)  # leftovers of the group
        res = subprocess.CompletedProcess(argv, popen.returncode, out, err)
        if check and res.returncode != 0:
            fail(f"command failed with code {res.returncode}: "
                 f"{' '.join(map(str, argv))}\n"
                 f"{out.decode(errors='replace')}{err.decode(errors='replace')}")
        return res

    # --- cleanup ---------------------------------------------------------

    def cleanup(self):
        """Stop everything this test started and remove its folder. Idempotent."""
        if self._cleaned:
            return
        self._cleaned = True
        while self._cleanups:
            fn = self._cleanups.pop()
            try:
                fn()
            except BaseException as e:  # cleanup must go on regardless
                print(f"mtlib: cleanup step failed: {e!r}", file=sys.stderr)
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.stop()
            else:  # the leader is gone; its group may not be
                _signal_group(proc.pgid, signal.SIGKILL)
        if self in _live_envs:
            _live_envs.remove(self)
        self._sweep_orphans()
        if self.keep:
            print(f"mtlib: kept test folder {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _sweep_orphans(self):
        """Kill descendants that left their group and were reparented to us."""
        me = os.getpid()
        others = {p.pid for e in _live_envs for p in e.procs}
        for _ in range(50):
            kids = [k for k in _children_of(me) if k not in others]
            if not kids:
                return
            for pid in kids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            # Reap them so they do not show up again as zombies.
            for pid in kids:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:  # reaped by its Popen meanwhile
                    pass
