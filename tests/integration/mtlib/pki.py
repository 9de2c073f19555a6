"""A test PKI made with the openssl CLI at test time.

    pki = t.pki()                     # made once per test process
    pki.ca                            # root certificate: the trust anchor
    leaf = pki.leaf("good")           # a Cert: .cert .key .chain files
    leaf = pki.leaf("expired")        # see VARIANTS for every name
    leaf.expect_code, leaf.expect     # how a verifying client must fail

Roots and the intermediate are made when the PKI is; each leaf is made on
first use and cached (ECDSA P-256 keys unless the variant needs RSA).
`chain` is what a server should send: leaf + intermediate, except for the
variants whose point is a different chain.

Debian 12's OpenSSL 3.0 `x509` has no -not_before/-not_after, so leaves are
signed with `openssl ca`, whose -startdate/-enddate set any validity.
"""
import datetime
import os
import secrets
import shutil
import subprocess
import threading

from .env import fail
from .peers import require

DEFAULT_NAMES = ("mail.test", "localhost", "pop.gmail.com", "imap.gmail.com",
                 "smtp.gmail.com")
DEFAULT_IPS = ("127.0.0.1", "127.0.0.2", "::1")

HOUR = 3600
DAY = 24 * HOUR

# name -> (issue() arguments, expected OpenSSL verify code, expected reason).
# The reason is OpenSSL's X509_verify_cert_error_string() for the code, for a
# client that trusts pki.ca and connects to 127.0.0.1 checking "mail.test"
# (checking the IP 127.0.0.1 for dns_only). Python's verify_message is the
# same text, except for codes 62 and 64 where it says "Hostname mismatch,
# certificate is not valid for 'mail.test'." (compare case-insensitively).
VARIANTS = {
    "good": ({}, 0, None),
    "good_rsa": ({"key": "rsa2048"}, 0, None),
    "expired": ({"not_before": -30 * DAY, "not_after": -DAY},
                10, "certificate has expired"),
    "not_yet_valid": ({"not_before": DAY, "not_after": 30 * DAY},
                      9, "certificate is not yet valid"),
    "wrong_host": ({"names": ("other.example",), "ips": ()},
                   62, "hostname mismatch"),
    "self_signed": ({"issuer": "self", "chain": "leaf"},
                    18, "self-signed certificate"),
    "unknown_ca": ({"issuer": "unknown"},
                   20, "unable to get local issuer certificate"),
    "missing_intermediate": ({"chain": "leaf"},
                             20, "unable to get local issuer certificate"),
    "rsa1024": ({"key": "rsa1024"}, 66, "EE certificate key too weak"),
    "sha1": ({"md": "sha1"}, 68, "CA signature digest algorithm too weak"),
    "dns_only": ({"ips": ()}, 64, "IP address mismatch"),
    "client_auth_only": ({"eku": "clientAuth"},
                         26, "unsuitable certificate purpose"),
}

_KEYS = {
    "ec": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    "rsa2048": ["-newkey", "rsa:2048"],
    "rsa1024": ["-newkey", "rsa:1024"],
}

_REQ_SECTION = """[req]
distinguished_name = dn
prompt = no
[dn]
CN = {cn}
"""

_CA_CONFIG = """[ca]
default_ca = this
[this]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/new
serial = $dir/serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
email_in_dn = no
[anything]
commonName = supplied
[v3_root]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_intermediate]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


class Cert:
    """One certificate as files, and what a verifying client should say.

    cert: the certificate (PEM); key: its private key (PEM, unencrypted);
    chain: what the server sends (cert first); extra_chain: the same
    without the leaf (may be empty). weak: a server must lower
    its OpenSSL security level (SECLEVEL=0) to even load it. expect_code /
    expect: the OpenSSL verify error a client trusting pki.ca must report
    (0 / None for a good certificate).
    """

    def __init__(self, name, folder):
        self.name = name
        self.cert = os.path.join(folder, name + ".pem")
        self.key = os.path.join(folder, name + ".key")
        self.chain = os.path.join(folder, name + ".chain.pem")
        # chain minus the leaf (possibly empty), for servers that take the
        # extra certificates apart (openssl s_server -cert_chain)
        self.extra_chain = os.path.join(folder, name + ".extra.pem")
        self.names = ()
        self.ips = ()
        self.weak = False
        self.expect_code = 0
        self.expect = None

    def __repr__(self):
        return f"<Cert {self.name}>"


def _stamp(offset):
    t = datetime.datetime.now(datetime.timezone.utc)
    t += datetime.timedelta(seconds=offset)
    return t.strftime("%Y%m%d%H%M%SZ")


class PKI:
    """Root CA, intermediate CA, an unknown root, and leaves made on demand."""

    def __init__(self, folder, names=DEFAULT_NAMES, ips=DEFAULT_IPS):
        require("openssl")
        self.dir = folder
        self.names = tuple(names)
        self.ips = tuple(ips)
        self._leaves = {}
        self._lock = threading.Lock()
        self._root = self._make_root("root", "mtlib Test Root CA")
        self._inter = self._make_intermediate(self._root, "intermediate",
                                              "mtlib Test Intermediate CA")
        self._uroot = self._make_root("unknown-root", "mtlib Unknown Root CA")
        self._uinter = self._make_intermediate(
            self._uroot, "unknown-intermediate", "mtlib Unknown Intermediate")
        self.ca = self._root.cert
        self.intermediate = self._inter.cert
        self.unknown_ca = self._uroot.cert
        self.ca_dir = self._hashed_dir("ca-dir", [self.ca])

    # --- CAs -------------------------------------------------------------

    def _run(self, *argv):
        r = subprocess.run(["openssl"] + list(argv), cwd=self.dir,
                           capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"openssl {' '.join(argv)} failed:\n{r.stdout}{r.stderr}")
        return r.stdout

    def _ca_folder(self, name):
        d = os.path.join(self.dir, name)
        os.makedirs(os.path.join(d, "new"), exist_ok=True)
        with open(os.path.join(d, "index.txt"), "w"):
            pass
        with open(os.path.join(d, "serial"), "w") as f:
            f.write("10" + secrets.token_hex(7) + "\n")  # even length, positive
        conf = os.path.join(d, "ca.cnf")
        with open(conf, "w") as f:
            f.write(_CA_CONFIG.format(dir=d))
        return d, conf

    def _make_root(self, name, cn):
        d, conf = self._ca_folder(name)
        c = Cert(name, self.dir)
        c.conf = conf
        req_conf = os.path.join(d, "req.cnf")
        with open(req_conf, "w") as f:
            f.write(_REQ_SECTION.format(cn=cn) + _CA_CONFIG.format(dir=d))
        self._run("req", "-x509", "-new", *_KEYS["ec"], "-nodes",
                  "-keyout", c.key, "-out", c.cert, "-config", req_conf,
                  "-extensions", "v3_root", "-days", "3650")
        shutil.copy(c.cert, c.chain)
        return c

    def _make_intermediate(self, root, name, cn):
        d, conf = self._ca_folder(name)
        c = Cert(name, self.dir)
        c.conf = conf
        csr = os.path.join(d, "req.csr")
        req_conf = os.path.join(d, "req.cnf")
        with open(req_conf, "w") as f:
            f.write(_REQ_SECTION.format(cn=cn))
        self._run("req", "-new", *_KEYS["ec"], "-nodes", "-keyout", c.key,
                  "-out", csr, "-config", req_conf)
        self._sign(root, csr, c.cert, "-extensions", "v3_intermediate",
                   "-startdate", _stamp(-DAY), "-enddate", _stamp(3000 * DAY))
        with open(c.chain, "w") as f:
            f.write(_read(c.cert) + _read(root.cert))
        return c

    def _sign(self, issuer, csr, out, *extra):
        self._run("ca", "-batch", "-notext", "-config", issuer.conf,
                  "-cert", issuer.cert, "-keyfile", issuer.key,
                  "-in", csr, "-out", out, *extra)

    def _hashed_dir(self, name, certs):
        """A CApath-style folder: the certificates plus their hash links."""
        d = os.path.join(self.dir, name)
        os.makedirs(d, exist_ok=True)
        for i, path in enumerate(certs):
            dest = os.path.join(d, f"ca{i}.pem")
            shutil.copy(path, dest)
            h = self._run("x509", "-noout", "-subject_hash", "-in", dest)
            os.symlink(f"ca{i}.pem", os.path.join(d, h.strip() + ".0"))
        return d

    # --- leaves ----------------------------------------------------------

    def leaf(self, variant="good"):
        """The leaf certificate of a VARIANTS entry, made on first use."""
        if variant not in VARIANTS:
            fail(f"unknown certificate variant {variant!r}; known: "
                 + ", ".join(VARIANTS))
        args, code, reason = VARIANTS[variant]
        c = self.issue(variant, **args)
        c.expect_code, c.expect = code, reason
        return c

    def all_variants(self):
        """Every VARIANTS leaf, by name (makes the missing ones)."""
        return {name: self.leaf(name) for name in VARIANTS}

    def issue(self, name, names=None, ips=None, key="ec", md="sha256",
              eku="serverAuth", not_before=-HOUR, not_after=30 * DAY,
              issuer="intermediate", chain="full", ocsp=None):
        """Make (once) and return a server certificate named name.

        The name identifies the certificate in this PKI: asking again with
        the same arguments returns the same files, other arguments fail.

        names/ips: SAN entries (default: the PKI's names and IPs; the first
        name, or the first IP, is the CN). key: "ec", "rsa2048", "rsa1024".
        md: signature digest. eku: extendedKeyUsage value. not_before /
        not_after: seconds from now. issuer: "intermediate", "root",
        "unknown" (intermediate of a root no client trusts) or "self".
        chain: "full" (leaf + issuing intermediate) or "leaf". ocsp: an
        OCSP responder URL for the authorityInfoAccess extension.
        """
        args = (names, ips, key, md, eku, not_before, not_after, issuer,
                chain, ocsp)
        with self._lock:
            if name in self._leaves:
                c, made_with = self._leaves[name]
                if made_with != args:
                    fail(f"certificate {name!r} was already issued with "
                         f"other arguments: {made_with} (now {args})")
                return c
            c = self._issue(name, *args)
            self._leaves[name] = (c, args)
            return c

    def _issue(self, name, names, ips, key, md, eku, not_before, not_after,
               issuer, chain, ocsp):
        if key not in _KEYS:
            fail(f"unknown key type {key!r}; known: {', '.join(_KEYS)}")
        c = Cert(name, os.path.join(self.dir))
        c.names = tuple(self.names if names is None else names)
        c.ips = tuple(self.ips if ips is None else ips)
        c.weak = key == "rsa1024" or md in ("sha1", "md5")
        san = [f"DNS:{n}" for n in c.names] + [f"IP:{i}" for i in c.ips]
        cn = (c.names or c.ips or ("unnamed",))[0]
        usage = "digitalSignature" + (", keyEncipherment"
                                      if key.startswith("rsa") else "")
        ext = ["basicConstraints = critical, CA:false",
               f"keyUsage = critical, {usage}",
               f"extendedKeyUsage = {eku}",
               "subjectKeyIdentifier = hash"]
        if san:
            ext.append("subjectAltName = " + ", ".join(san))
        if ocsp:
            ext.append(f"authorityInfoAccess = OCSP;URI:{ocsp}")
        conf = os.path.join(self.dir, name + ".cnf")
        with open(conf, "w") as f:
            f.write(_REQ_SECTION.format(cn=cn) + "[leaf]\n" + "\n".join(ext)
                    + "\n")
        if issuer == "self":
            self._run("req", "-x509", "-new", *_KEYS[key], "-nodes",
                      "-keyout", c.key, "-out", c.cert, "-config", conf,
                      "-extensions", "leaf", "-days", "30", f"-{md}")
            _write_chain(c, [])
            return c
        ca = {"intermediate": self._inter, "root": self._root,
              "unknown": self._uinter}.get(issuer)
        if ca is None:
            fail(f"unknown issuer {issuer!r}")
        csr = os.path.join(self.dir, name + ".csr")
        self._run("req", "-new", *_KEYS[key], "-nodes", "-keyout", c.key,
                  "-out", csr, "-config", conf)
        with open(conf, "a") as f:
            f.write("authorityKeyIdentifier = keyid:always\n")
        self._sign(ca, csr, c.cert, "-extfile", conf, "-extensions", "leaf",
                   "-md", md, "-startdate", _stamp(not_before),
                   "-enddate", _stamp(not_after))
        extra = [ca.cert] if chain == "full" and ca is not self._root else []
        _write_chain(c, extra)
        return c


    # --- revocation ------------------------------------------------------

    def revoke(self, cert, reason="keyCompromise"):
        """Mark a leaf of the intermediate CA revoked in its database."""
        self._run("ca", "-batch", "-config", self._inter.conf,
                  "-cert", self._inter.cert, "-keyfile", self._inter.key,
                  "-revoke", cert.cert, "-crl_reason", reason)

    def ocsp_responder(self, env, port):
        """`openssl ocsp` answering for the intermediate CA's leaves on
        127.0.0.1:port, signing as the CA itself (revoke first: it reads
        the database when it starts)."""
        from .env import wait_listening
        proc = env.spawn(["openssl", "ocsp", "-index",
                          os.path.join(self.dir, "intermediate", "index.txt"),
                          "-port", str(port), "-CA",
                          self._inter.cert, "-rsigner", self._inter.cert,
                          "-rkey", self._inter.key, "-nmin", "60",
                          "-ignore_err"], name="ocsp")
        wait_listening([port], proc=proc)
        return proc


def _write_chain(c, extra):
    with open(c.extra_chain, "w") as f:
        f.write("".join(_read(p) for p in extra))
    with open(c.chain, "w") as f:
        f.write(_read(c.cert) + "".join(_read(p) for p in extra))


def _read(path):
    with open(path) as f:
        return f.read()
