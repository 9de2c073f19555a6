"""Run a whole test inside a private network and mount namespace (root).

For tests that must use real configurations unchanged (pop.gmail.com:995,
the system CA store): the names resolve to 127.0.0.1 through a bind-mounted
/etc/hosts, the test root CA is the only system CA (bind-mounted over
/etc/ssl/certs), and the test may listen on the real ports (110, 995, 143,
993, 25, 465, 587) because the namespace has its own loopback.

    def main(t):
        dc = Dovecot(t, t.pki().leaf("good"),
                     ports={"pop3s": 995, "imaps": 993, ...}).start()
        ...
    mtlib.run(main, netns=Namespace())

run() re-executes the script as `unshare --net --mount --fork` with
MT_NETNS=1 set; the outer process only waits and passes on the exit code
(and SIGTERM/SIGINT: the child gets SIGTERM when unshare dies). Inside,
setup_inside() brings lo up, mounts the hosts file and the trust store.

Debian 12's OpenSSL looks for system CAs in OPENSSLDIR=/usr/lib/ssl:
cert.pem -> /etc/ssl/certs/ca-certificates.crt and certs -> /etc/ssl/certs
(`openssl version -d`); SSL_CTX_set_default_verify_paths() reads both, and
so does Python's ssl.create_default_context(). Mounting one folder over
/etc/ssl/certs replaces both. SSL_CERT_FILE / SSL_CERT_DIR would override
them, so they are removed from the environment inside.
"""
import os
import signal
import subprocess
import sys

from .env import fail
from .peers import PYTHON, require, require_root

GMAIL_NAMES = ("pop.gmail.com", "imap.gmail.com", "smtp.gmail.com")
SYSTEM_CA_DIR = "/etc/ssl/certs"
SYSTEM_CA_FILE = "ca-certificates.crt"
_FLAG = "MT_NETNS"
_OUTER = "MT_NETNS_OUTER"


class Namespace:
    """What the namespace looks like.

    hosts: names that resolve to 127.0.0.1 (and ::1 with ipv6=True).
    trust_test_ca: make the test PKI's root the only system CA.
    """

    def __init__(self, hosts=GMAIL_NAMES, ipv6=False, trust_test_ca=True):
        self.hosts = tuple(hosts)
        self.ipv6 = ipv6
        self.trust_test_ca = trust_test_ca


def _netns_id():
    return os.readlink("/proc/self/ns/net")


def inside():
    """True in the re-executed child, inside its own network namespace."""
    return (os.environ.get(_FLAG) == "1"
            and os.environ.get(_OUTER) not in (None, _netns_id()))


def reexec(ns):
    """Run this script again inside unshare; return its exit code."""
    if os.geteuid() != 0:
        print("FAIL: this test needs a network namespace and must run as "
              "root (unshare --net --mount)", file=sys.stderr)
        return 1
    env = dict(os.environ)
    env[_FLAG] = "1"
    env[_OUTER] = _netns_id()
    python = PYTHON if os.path.exists(PYTHON) else sys.executable
    argv = ["unshare", "--net", "--mount", "--propagation", "private",
            "--fork", "--kill-child=SIGTERM", "--", python,
            os.path.abspath(sys.argv[0])] + sys.argv[1:]
    child = subprocess.Popen(argv, env=env)

    def forward(signum, frame):
        try:
            child.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    code = child.wait()
    return code if code >= 0 else 1


def setup_inside(t, ns):
    """Inside the namespace: loopback up, hosts file, system trust store."""
    require_root("it mounts over /etc/hosts and /etc/ssl/certs")
    require("util-linux", "iproute2", "mount")
    if not inside():
        fail("setup_inside() called outside a private network namespace")
    t.run(["ip", "link", "set", "lo", "up"])
    folder = t.mkdir("netns")
    lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost"]
    if ns.hosts:
        lines.append("127.0.0.1 " + " ".join(ns.hosts))
        if ns.ipv6:
            lines.append("::1 " + " ".join(ns.hosts))
    hosts = t.write("netns/hosts", "\n".join(lines) + "\n")
    t.run(["mount", "--bind", hosts, "/etc/hosts"])
    for var in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        os.environ.pop(var, None)
    t.netns = ns
    if ns.trust_test_ca:
        trust_ca(t, t.pki().ca)
    return folder


def trust_ca(t, *ca_files):
    """Make ca_files the only CAs of the system store (inside only)."""
    if not inside():
        fail("trust_ca() replaces the system CA store and only works inside "
             "a test namespace (run(main, netns=Namespace()))")
    folder = t.unique_path("netns/certs")
    os.makedirs(folder)
    bundle = os.path.join(folder, SYSTEM_CA_FILE)
    with open(bundle, "w") as out:
        for i, path in enumerate(ca_files):
            with open(path) as f:
                pem = f.read()
            out.write(pem)
            with open(os.path.join(folder, f"ca{i}.pem"), "w") as one:
                one.write(pem)
            h = t.run(["openssl", "x509", "-noout", "-subject_hash", "-in",
                       path]).stdout.decode().strip()
            n = 0
            while os.path.lexists(os.path.join(folder, f"{h}.{n}")):
                n += 1
            os.symlink(f"ca{i}.pem", os.path.join(folder, f"{h}.{n}"))
    os.chmod(bundle, 0o644)
    t.run(["mount", "--bind", folder, SYSTEM_CA_DIR])
    return bundle
