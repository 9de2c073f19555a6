"""Running the mailtunnel daemon under test.

    mt = Mailtunnel(t, '''
    [pop3s]
    client = yes
    accept = 127.0.0.1:%d
    connect = 127.0.0.1:%d
    CAfile = %s
    ''' % (port, dc.ports["pop3s"], pki.ca)).start(wait_ports=[port])
    mt.wait_for_log(r"listening")
    mark = mt.log_mark(); mt.reload(); mt.wait_for_log(r"reload", since=mark)
    code = mt.stop()

    code, output = check_config(t, config_text)      # mailtunnel -t

The command lines live in daemon_argv() and check_argv(), nowhere else.
MT_MAILTUNNEL overrides the binary; MT_WRAPPER is put in front of it (for
example MT_WRAPPER="valgrind -q --error-exitcode=99").
"""
import os
import shlex

from .env import builddir, fail, wait_listening


def binary():
    """The daemon binary: $MT_MAILTUNNEL, else $MT_BUILDDIR/src/mailtunnel."""
    return os.environ.get("MT_MAILTUNNEL") or os.path.join(
        builddir(), "src", "mailtunnel")


def _base(program):
    if program is None:
        program = [binary()]
    elif isinstance(program, str):
        program = [program]
    return shlex.split(os.environ.get("MT_WRAPPER", "")) + list(program)


def _require_binary(program):
    if program is not None:
        return
    path = binary()
    if not os.access(path, os.X_OK):
        fail(f"mailtunnel binary not found at {path}: build it first "
             f"(make), or set MT_BUILDDIR / MT_MAILTUNNEL")


def daemon_argv(config_path, program=None, args=()):
    """The command that runs the daemon in the foreground on config_path."""
    return _base(program) + ["-f", config_path] + list(args)


def check_argv(config_path, program=None, args=()):
    """The command that checks config_path and prints the parsed result."""
    return _base(program) + ["-t", config_path] + list(args)


def check_config(env, config, program=None, args=(), timeout=30.0,
                 name="check"):
    """Run `mailtunnel -t` on config text; return (exit code, output).

    output is stdout and stderr together, as text.
    """
    _require_binary(program)
    path = env.write(env.unique_path(name + ".conf"), config)
    r = env.run(check_argv(path, program, args), check=False,
                timeout=timeout)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


class Mailtunnel:
    """One daemon process on a config written into the test folder.

    config: the configuration text. program: the binary (str or argv
    list; default binary()). args: extra command-line arguments.
    env_vars: extra environment for the process (None removes one).
    """

    def __init__(self, env, config, program=None, args=(), env_vars=None,
                 name="mailtunnel"):
        _require_binary(program)
        self.env = env
        self.name = name
        self.config_path = env.unique_path(name + ".conf")
        self.write_config(config)
        self.argv = daemon_argv(self.config_path, program, args)
        self.env_vars = env_vars
        self.proc = None

    def write_config(self, config):
        """(Re)write the config file, e.g. before reload()."""
        with open(self.config_path, "w") as f:
            f.write(config)

    def start(self, wait_ports=(), timeout=10.0):
        """Start the daemon; wait until every port in wait_ports listens."""
        self.proc = self.env.spawn(self.argv, name=self.name,
                                   env=self.env_vars)
        if wait_ports:
            wait_listening(list(wait_ports), timeout, self.proc)
        return self

    @property
    def pid(self):
        return self.proc.pid

    @property
    def log_path(self):
        return self.proc.log_path

    def signal(self, sig):
        """Send a signal ("HUP", "USR1", "TERM" or a number)."""
        self.proc.signal(sig)

    def reload(self):
        self.proc.signal("HUP")

    def stop(self, timeout=10.0):
        """SIGTERM, then wait for the exit code (fails after timeout)."""
        self.proc.signal("TERM")
        return self.proc.wait(timeout)

    def wait_exit(self, timeout=10.0):
        """Wait for the daemon to exit by itself; return its exit code."""
        return self.proc.wait(timeout)

    def poll(self):
        return self.proc.poll()

    def log_text(self):
        return self.proc.log_text()

    def log_mark(self):
        return self.proc.log_mark()

    def wait_for_log(self, pattern, timeout=10.0, since=0):
        """Wait for a log line matching regex pattern; return the match."""
        return self.proc.wait_for_log(pattern, timeout, since)

    def rss_kib(self):
        """Resident memory of the daemon in KiB (VmRSS)."""
        return self.proc.rss_kib()
