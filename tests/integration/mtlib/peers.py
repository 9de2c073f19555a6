"""Checks for the Debian packages a test needs, failing with the fix.

A missing peer is a test failure that names the exact `apt-get install`
line; it is never a skip. Fixtures call require() for themselves, so a test
only needs to call it for tools it runs directly.
"""
import os
import shutil
import subprocess

from .env import fail

PYTHON = "/usr/bin/python3"

# Debian package -> how to tell it is installed (a path, or "py:module" for a
# module importable by Debian's /usr/bin/python3).
PROBES = {
    "dovecot-core": ["/usr/sbin/dovecot", "/usr/bin/doveadm"],
    "dovecot-imapd": ["/usr/lib/dovecot/imap", "/usr/lib/dovecot/imap-login"],
    "dovecot-pop3d": ["/usr/lib/dovecot/pop3", "/usr/lib/dovecot/pop3-login"],
    "python3-aiosmtpd": ["py:aiosmtpd"],
    "python3": [PYTHON],
    "openssl": ["/usr/bin/openssl"],
    "stunnel4": ["/usr/bin/stunnel4"],
    "util-linux": ["/usr/bin/unshare", "/usr/bin/setpriv"],
    "mount": ["/usr/bin/mount"],
    "iproute2": ["/usr/sbin/ip"],
    "procps": ["/usr/bin/pgrep"],
}


def _python_has(module):
    if not os.path.exists(PYTHON):
        return False
    r = subprocess.run([PYTHON, "-c", f"import {module}"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return r.returncode == 0


def _dpkg_installed(package):
    if not shutil.which("dpkg-query"):
        return False
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                       capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.endswith(" installed")


_checked = {}


def missing(*packages):
    """The subset of packages that are not installed, each with its reason."""
    out = []
    for pkg in packages:
        if pkg not in _checked:
            _checked[pkg] = _probe(pkg)
        if _checked[pkg]:
            out.append((pkg, _checked[pkg]))
    return out


def _probe(pkg):
    probes = PROBES.get(pkg)
    if probes is None:
        return None if _dpkg_installed(pkg) else "not installed (dpkg-query)"
    for probe in probes:
        if probe.startswith("py:"):
            if not _python_has(probe[3:]):
                return f"{PYTHON} cannot import {probe[3:]}"
        elif not os.path.exists(probe):
            return f"{probe} not found"
    return None


def require(*packages):
    """Fail the test unless every Debian package listed is installed."""
    gone = missing(*packages)
    if gone:
        why = "; ".join(f"{p}: {reason}" for p, reason in gone)
        fail(f"missing test peer(s) ({why}); install with: apt-get install "
             + " ".join(p for p, _ in gone))


def require_root(why):
    """Fail the test unless it runs as root; why says what needs it."""
    if os.geteuid() != 0:
        fail(f"this test must run as root: {why} (run it with sudo, or as "
             f"root in a container)")
