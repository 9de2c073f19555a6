#!/usr/bin/python3
"""setuid, setgid and chroot against the identity the daemon starts with.

Started as root, the daemon binds and then becomes setuid/setgid. Started
as that user already (systemd's User=, as the packaged unit does), the
options are satisfied and nothing is changed. Started as another user, it
cannot switch and says so. The daemon runs from a copy in the test folder,
so that nobody can execute it wherever the build tree lives.
"""
import os
import pwd
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mtlib  # noqa: E402
from mtlib import Mailtunnel, expect_equal, require, require_root  # noqa: E402
from mtlib.daemon import binary  # noqa: E402

AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup",
             "--clear-groups"]


def uids(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return line.split()[1:]
    return []


def service(port):
    # Never connected to: the tests only need a listening service.
    return f"""
[pop3]
client = yes
accept = 127.0.0.1:{port}
connect = 127.0.0.1:9
verifyChain = no
"""


def main(t):
    require_root("it starts the daemon as root and as nobody")
    require("util-linux")
    os.chmod(t.dir, 0o755)  # nobody reads its configuration here
    prog = t.path("mailtunnel")
    shutil.copy(binary(), prog)
    os.chmod(prog, 0o755)
    nobody = str(pwd.getpwnam("nobody").pw_uid)

    with t.case("root with setuid = nobody runs as nobody"):
        port = t.port()
        mt = Mailtunnel(t, "setuid = nobody\nsetgid = nogroup\ndebug = info\n"
                        + service(port), program=prog).start(
                            wait_ports=[port])
        mt.wait_for_log(rf"running as uid {nobody}, gid ")
        expect_equal("uids", uids(mt.pid), [nobody] * 4)
        expect_equal("exit", mt.stop(), 0)

    with t.case("a log file that cannot be opened: exit 73, and why"):
        port = t.port()
        log = t.path("no-such-folder", "mailtunnel.log")
        mt = Mailtunnel(t, f"setuid = nobody\noutput = {log}\n"
                        + service(port), program=prog).start()
        expect_equal("exit", mt.wait_exit(), 73)
        mt.wait_for_log(rf"cannot open log file {log}: No such file or "
                        rf"directory")

    with t.case("already nobody, setuid = nobody and setgid = nogroup: fine"):
        port = t.port()
        mt = Mailtunnel(t, "setuid = nobody\nsetgid = nogroup\n"
                        + service(port), program=AS_NOBODY + [prog]).start(
                            wait_ports=[port])
        mt.wait_for_log(r"started: 1 service")
        expect_equal("uids", uids(mt.pid), [nobody] * 4)
        expect_equal("exit", mt.stop(), 0)

    with t.case("nobody with setuid = root: refused, exit 71"):
        port = t.port()
        mt = Mailtunnel(t, "setuid = root\n" + service(port),
                        program=AS_NOBODY + [prog]).start()
        expect_equal("exit", mt.wait_exit(), 71)
        mt.wait_for_log(r"err: cannot switch to group 0: Operation not "
                        r"permitted")

    with t.case("nobody with chroot: refused, exit 71"):
        port = t.port()
        mt = Mailtunnel(t, f"chroot = {t.dir}\n" + service(port),
                        program=AS_NOBODY + [prog]).start()
        expect_equal("exit", mt.wait_exit(), 71)
        mt.wait_for_log(rf"err: chroot {t.dir}: Operation not permitted")


mtlib.run(main)
