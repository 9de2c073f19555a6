#!/usr/bin/python3
"""The Debian package end to end: build it from a copy of this tree, check
it with lintian, install it, run the daemon the way its systemd units do,
pass a POP3 session through it to Dovecot, verify the units, purge it, and
check that nothing is left.

systemd is not PID 1 where the tests run, so the daemon is started the way
the installed unit would start it: ExecStartPre, ExecStart and ExecReload
are read from the unit file, and User=, Group=, AmbientCapabilities=,
CapabilityBoundingSet=, NoNewPrivileges= and UMask= are reproduced with
setpriv, in a clean environment with NOTIFY_SOCKET. The file-system sandbox
(ProtectSystem= and the rest) is not reproduced; systemd-analyze checks it.

Installs and purges the package: it needs root, and refuses to run where
mailtunnel is installed or its user exists.
"""
import grp
import os
import poplib
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mtlib  # noqa: E402
from mtlib import (Dovecot, expect_equal, fail, is_listening,  # noqa: E402
                   make_messages, require, require_root, srcdir,
                   wait_listening)

UNIT_DIR = "/lib/systemd/system"
CONF_DIR = "/etc/mailtunnel"
STATE_DIR = "/var/lib/mailtunnel"
# Everything the package installs or makes, for the "nothing left" check.
LEFTOVERS = [
    CONF_DIR, STATE_DIR, "/usr/bin/mailtunnel",
    UNIT_DIR + "/mailtunnel.service", UNIT_DIR + "/mailtunnel@.service",
    "/usr/share/man/man8/mailtunnel.8.gz",
    "/usr/share/man/man5/mailtunnel.conf.5.gz", "/usr/share/doc/mailtunnel",
    "/etc/systemd/system/multi-user.target.wants/mailtunnel.service",
    "/var/lib/systemd/deb-systemd-helper-enabled/mailtunnel.service.dsh-also",
    "/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/"
    "mailtunnel.service",
]
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TOOLS = ["dpkg-dev", "debhelper", "fakeroot", "lintian", "systemd",
         "adduser", "passwd", "util-linux", "man-db"]


def dpkg_status(package):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                       capture_output=True, text=True)
    # Purged packages may linger as "unknown ok not-installed".
    if r.returncode != 0 or r.stdout.endswith("not-installed"):
        return ""
    return r.stdout


def exists(path):
    return os.path.lexists(path)


def account_exists(db, name):
    return subprocess.run(["getent", db, name],
                          stdout=subprocess.DEVNULL).returncode == 0


def preflight(t):
    require_root("it installs and purges the mailtunnel package")
    require(*TOOLS)
    r = t.run(["dpkg-checkbuilddeps",
               os.path.join(srcdir(), "contrib", "debian", "control")],
              check=False)
    if r.returncode != 0:
        deps = r.stderr.decode().split("dependencies:")[-1].strip()
        fail(f"missing build dependencies ({deps}); install with: "
             f"apt-get build-dep {srcdir()}/contrib")
    found = [p for p in (CONF_DIR, STATE_DIR) if exists(p)]
    if "installed" in dpkg_status("mailtunnel"):
        found.append("package mailtunnel")
    found += [f"{db} mailtunnel" for db in ("passwd", "group")
              if account_exists(db, "mailtunnel")]
    if found:
        fail(f"this machine has mailtunnel already ({', '.join(found)}); "
             f"the test installs and purges the package, and would remove "
             f"it: apt-get purge mailtunnel first")


def purge(t):
    """dpkg --purge, after removing the test's own files in /etc/mailtunnel."""
    for name in ("pkgtest.conf", "pkgtest-ca.pem"):
        if exists(os.path.join(CONF_DIR, name)):
            os.unlink(os.path.join(CONF_DIR, name))
    if dpkg_status("mailtunnel"):
        t.run(["dpkg", "--purge", "mailtunnel"], check=False, timeout=120)


def restore(t):
    """At cleanup: purge, then remove by force what a broken purge left.

    preflight() made sure none of it existed before the test.
    """
    purge(t)
    for path in LEFTOVERS:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif exists(path):
            os.unlink(path)
    if account_exists("passwd", "mailtunnel"):
        t.run(["userdel", "mailtunnel"], check=False)
    if account_exists("group", "mailtunnel"):
        t.run(["groupdel", "mailtunnel"], check=False)


# --- the unit file, as systemd reads it -----------------------------------
def read_unit(path):
    """{key: [values]} of the [Service] section (later values last)."""
    keys, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line
            elif section == "[Service]":
                k, _, v = line.partition("=")
                keys.setdefault(k.strip(), []).append(v.strip())
    return keys


def unit_command(unit, key, instance="", mainpid=None):
    """The argv of ExecStart= and friends, specifiers expanded."""
    line = unit[key][-1].lstrip("-@:+!")
    line = line.replace("%i", instance)
    if mainpid is not None:
        line = line.replace("$MAINPID", str(mainpid))
    return shlex.split(line)


def cap_list(unit, key):
    caps = " ".join(unit.get(key, [])).split()
    return ",".join("+" + c.lower().removeprefix("cap_") for c in caps)


def as_unit(unit, argv, notify=None):
    """argv run with the unit's identity, capabilities and environment."""
    env = ["env", "-i", "PATH=" + PATH, "LANG=C.UTF-8"]
    if notify:
        env.append("NOTIFY_SOCKET=" + notify)
    priv = ["setpriv", "--reuid=" + unit["User"][-1],
            "--regid=" + unit["Group"][-1], "--init-groups"]
    ambient = cap_list(unit, "AmbientCapabilities")
    if ambient:
        priv += ["--inh-caps=-all," + ambient,
                 "--ambient-caps=-all," + ambient]
    priv.append("--bounding-set=-all," + cap_list(unit,
                                                  "CapabilityBoundingSet"))
    if unit.get("NoNewPrivileges", ["no"])[-1] == "yes":
        priv.append("--no-new-privs")
    umask = unit.get("UMask", ["0022"])[-1]
    return env + priv + ["--", "/bin/sh", "-c", f'umask {umask} && exec "$@"',
                         "sh"] + argv


class Notify:
    """A NOTIFY_SOCKET, as systemd gives a Type=notify service."""

    def __init__(self, t):
        self.dir = tempfile.mkdtemp(prefix="mt-notify-")
        t.on_cleanup(lambda: shutil.rmtree(self.dir, ignore_errors=True))
        os.chmod(self.dir, 0o755)  # the service user must reach it
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)
        self.sock.settimeout(0.1)
        t.on_cleanup(self.sock.close)
        self.messages = []

    def wait(self, field, proc, timeout=10.0):
        """Wait for a datagram that sets field (e.g. READY=1) from proc."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                msg = self.sock.recv(4096).decode()
            except socket.timeout:
                # Only once nothing is queued: it may have said it and gone.
                if proc.poll() is not None:
                    fail(f"{proc.name} exited with code {proc.returncode} "
                         f"before {field}; it said {self.messages}\n"
                         f"{proc.tail()}")
                continue
            self.messages.append(msg)
            if field in msg.split("\n"):
                return
        fail(f"no {field} on NOTIFY_SOCKET after {timeout:.0f}s; got "
             f"{self.messages}")


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f
                    if ":\t" in line)


def low_port():
    """A free TCP port below 1024 on 127.0.0.1."""
    for port in range(1023, 900, -1):
        if is_listening(port):
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    fail("no free port between 901 and 1023")


# --- the steps ---------------------------------------------------------------
def build(t, out):
    start = time.monotonic()
    # Not the make check that runs us: its jobserver and its variables
    # (TESTS=...) must not reach the package build's make.
    env = {"DEB_BUILD_OPTIONS": "nocheck parallel=2", "MAKEFLAGS": "",
           "MFLAGS": "", "MAKELEVEL": ""}
    r = t.run(["/bin/bash", os.path.join(srcdir(), "contrib/debian/build"),
               out], env=env, timeout=900)
    debs = [f for f in r.stdout.decode().split() if
            re.search(r"/mailtunnel_[^/]*\.deb$", f)]
    changes = [f for f in r.stdout.decode().split() if f.endswith(".changes")]
    if len(debs) != 1 or len(changes) != 1:
        fail(f"build printed no single .deb and .changes:\n{r.stdout}")
    print(f"package built in {time.monotonic() - start:.1f}s: {debs[0]}")
    return debs[0], changes[0]


def check_lintian(t, changes):
    # Not --show-overrides: lintian 2.116 then fails on overridden tags.
    r = t.run(["lintian", "--fail-on", "error,warning", "--display-info",
               "--pedantic", changes], check=False, timeout=300)
    text = (r.stdout + r.stderr).decode()
    tags = [ln for ln in text.splitlines() if re.match(r"[EWIPXO]: ", ln)]
    print("lintian:\n  " + "\n  ".join(tags or ["(no tags)"]))
    bad = [ln for ln in tags if ln[0] in "EW"]
    if r.returncode != 0 or bad:
        fail(f"lintian (exit {r.returncode}):\n{text}")


def check_contents(t, deb):
    listing = t.run(["dpkg-deb", "-c", deb]).stdout.decode()
    want = ["./usr/bin/mailtunnel", "./etc/mailtunnel/mailtunnel.conf",
            "." + UNIT_DIR + "/mailtunnel.service",
            "." + UNIT_DIR + "/mailtunnel@.service",
            "./usr/share/man/man8/mailtunnel.8.gz",
            "./usr/share/man/man5/mailtunnel.conf.5.gz",
            "./usr/share/doc/mailtunnel/examples/mailtunnel.conf",
            "./usr/share/doc/mailtunnel/copyright"]
    paths = {ln.split()[-1] for ln in listing.splitlines()}
    missing = [w for w in want if w not in paths]
    # dh_compress compresses it only past 4 KiB.
    readme = "./usr/share/doc/mailtunnel/README.md"
    if readme not in paths and readme + ".gz" not in paths:
        missing.append(readme)
    if missing:
        fail(f"not in the package: {missing}\n{listing}")
    ctl = t.mkdir("control")
    t.run(["dpkg-deb", "-e", deb, ctl])
    with open(os.path.join(ctl, "conffiles")) as f:
        conffiles = f.read().split()
    expect_equal("conffiles", conffiles, [CONF_DIR + "/mailtunnel.conf"])


def check_postinst():
    try:
        pw = pwd.getpwnam("mailtunnel")
        gr = grp.getgrnam("mailtunnel")
    except KeyError as e:
        fail(f"postinst made no user or group: {e}")
    if pw.pw_uid >= 1000 or pw.pw_gid != gr.gr_gid:
        fail(f"not a system user in its own group: {pw}")
    expect_equal("home", pw.pw_dir, STATE_DIR)
    expect_equal("shell", pw.pw_shell, "/usr/sbin/nologin")
    st = os.stat(STATE_DIR)
    expect_equal("state folder owner", (st.st_uid, st.st_gid),
                 (pw.pw_uid, gr.gr_gid))
    expect_equal("state folder mode", oct(st.st_mode & 0o7777), "0o750")


def check_verify(t):
    """systemd-analyze verify and security on the installed units."""
    vdir = t.mkdir("units")
    inst = os.path.join(vdir, "mailtunnel@pkgtest.service")
    os.symlink(UNIT_DIR + "/mailtunnel@.service", inst)
    for unit in (UNIT_DIR + "/mailtunnel.service", inst):
        r = t.run(["systemd-analyze", "verify", unit], check=False)
        out = (r.stdout + r.stderr).decode().strip()
        if r.returncode != 0 or out:
            fail(f"systemd-analyze verify {unit} (exit {r.returncode}):\n"
                 f"{out}")
    for unit in (UNIT_DIR + "/mailtunnel.service", inst):
        r = t.run(["systemd-analyze", "security", "--offline=true",
                   "--threshold=25", "--no-pager", unit], check=False)
        out = r.stdout.decode()
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out)
        if r.returncode != 0 or m is None:
            fail(f"exposure above 2.5 for {unit} (exit {r.returncode}):\n"
                 f"{out}{r.stderr.decode()}")
        print(f"systemd-analyze security {os.path.basename(unit)}: "
              f"{m.group(1)}")


def check_identity(pid, unit):
    st = proc_status(pid)
    uid = pwd.getpwnam(unit["User"][-1]).pw_uid
    expect_equal("uids", st["Uid"].split(), [str(uid)] * 4)
    expect_equal("effective capabilities", st["CapEff"], "0000000000000400")
    expect_equal("bounding set", st["CapBnd"], "0000000000000400")
    expect_equal("no_new_privs", st["NoNewPrivs"], "1")


def write_instance_conf(path, ports, dc, ca):
    text = """; as written for stunnel, which started as root
setuid = mailtunnel
setgid = mailtunnel
debug = info
"""
    for i, port in enumerate(ports):
        text += f"""
[pop3-{i}]
client = yes
accept = 127.0.0.1:{port}
connect = 127.0.0.1:{dc.ports['pop3s']}
CAfile = {ca}
checkHost = mail.test
"""
    with open(path, "w") as f:
        f.write(text)
    # Secrets may live in a configuration: readable by the service only.
    shutil.chown(path, "root", "mailtunnel")
    os.chmod(path, 0o640)


def run_instance(t, dc, pki, msgs):
    """mailtunnel@pkgtest.service, with a stunnel-style setuid/setgid."""
    unit = read_unit(UNIT_DIR + "/mailtunnel@.service")
    port = low_port()
    ca = os.path.join(CONF_DIR, "pkgtest-ca.pem")
    shutil.copy(pki.ca, ca)
    os.chmod(ca, 0o644)
    conf = os.path.join(CONF_DIR, "pkgtest.conf")
    write_instance_conf(conf, [port], dc, ca)

    with t.case("ExecStartPre (mailtunnel -t) of mailtunnel@pkgtest"):
        r = t.run(as_unit(unit, unit_command(unit, "ExecStartPre",
                                             "pkgtest")), cwd="/")
        if b"OK (1 service)" not in r.stderr:
            fail(f"mailtunnel -t said:\n{r.stderr.decode()}")

    notify = Notify(t)
    proc = t.spawn(as_unit(unit, unit_command(unit, "ExecStart", "pkgtest"),
                           notify.path), name="mailtunnel-pkgtest", cwd="/")
    with t.case(f"ExecStart listens on port {port} as mailtunnel, READY=1"):
        notify.wait("READY=1", proc)
        wait_listening([port], 10, proc)
        check_identity(proc.pid, unit)
        proc.wait_for_log(r"started: 1 service")

    with t.case("a POP3 session through the installed daemon"):
        p = poplib.POP3("127.0.0.1", port, timeout=10)
        p.user(dc.user)
        p.pass_(dc.password)
        expect_equal("messages", p.stat()[0], len(msgs))
        _, lines, _ = p.retr(2)
        expect_equal("message 2", b"\r\n".join(lines) + b"\r\n", msgs[1])
        p.quit()

    with t.case("ExecReload adds a port below 1024: RELOADING=1, READY=1"):
        port2 = low_port()
        write_instance_conf(conf, [port, port2], dc, ca)
        mark = proc.log_mark()
        t.run(unit_command(unit, "ExecReload", "pkgtest", proc.pid))
        notify.wait("RELOADING=1", proc)
        notify.wait("READY=1", proc)
        proc.wait_for_log(r"configuration reloaded: 2 services", since=mark)
        wait_listening([port2], 10, proc)
        p = poplib.POP3("127.0.0.1", port2, timeout=10)
        expect_equal("greeting", p.getwelcome()[:3], b"+OK")
        p.quit()

    with t.case("SIGTERM (systemctl stop): STOPPING=1, exit 0"):
        proc.signal("TERM")
        notify.wait("STOPPING=1", proc)
        expect_equal("exit code", proc.wait(15), 0)


def run_main_unit(t):
    """mailtunnel.service on the shipped configuration (no services)."""
    unit = read_unit(UNIT_DIR + "/mailtunnel.service")
    with t.case("ExecStartPre (mailtunnel -t) on the installed config"):
        r = t.run(as_unit(unit, unit_command(unit, "ExecStartPre")), cwd="/")
        if b"OK (0 services)" not in r.stderr:
            fail(f"mailtunnel -t said:\n{r.stderr.decode()}")
    with t.case("mailtunnel.service starts, says READY=1 and stops"):
        notify = Notify(t)
        proc = t.spawn(as_unit(unit, unit_command(unit, "ExecStart"),
                               notify.path), name="mailtunnel-main", cwd="/")
        notify.wait("READY=1", proc)
        check_identity(proc.pid, unit)
        proc.signal("TERM")
        expect_equal("exit code", proc.wait(15), 0)


def check_purged(t):
    # What a fetch service would leave behind in its state folder.
    state = os.path.join(STATE_DIR, "ledger")
    with open(state, "w") as f:
        f.write("state\n")
    shutil.chown(state, "mailtunnel", "mailtunnel")
    purge(t)
    left = [p for p in LEFTOVERS if exists(p)]
    left += [f"{db} mailtunnel" for db in ("passwd", "group")
             if account_exists(db, "mailtunnel")]
    status = dpkg_status("mailtunnel")
    if status:
        left.append(f"dpkg status '{status}'")
    if left:
        fail(f"left after purge: {left}")


def main(t):
    preflight(t)
    out = t.mkdir("deb")
    with t.case("contrib/debian/build makes the package"):
        deb, changes = build(t, out)
    if t.failed:
        return
    with t.case("lintian: no errors, no warnings"):
        check_lintian(t, changes)
    with t.case("the package holds the binary, config, units, docs"):
        check_contents(t, deb)

    t.on_cleanup(lambda: restore(t))
    with t.case("apt-get install ./mailtunnel_*.deb"):
        t.run(["apt-get", "install", "-y", "-q", "--no-install-recommends",
               "-o", "DPkg::Lock::Timeout=120", deb],
              env={"DEBIAN_FRONTEND": "noninteractive"}, timeout=300)
    if not dpkg_status("mailtunnel").endswith(" installed"):
        fail(f"not installed; dpkg status: {dpkg_status('mailtunnel')!r}")
    with t.case("postinst: system user and group mailtunnel, state folder"):
        check_postinst()
    with t.case("systemd-analyze verify and security on the installed units"):
        check_verify(t)
    run_main_unit(t)
    pki = t.pki()
    msgs = make_messages(3, sizes=(500, 20000))
    dc = Dovecot(t, pki.leaf("good"), msgs).start()
    run_instance(t, dc, pki, msgs)
    with t.case("purge leaves no user, group, file or folder"):
        check_purged(t)


mtlib.run(main)
