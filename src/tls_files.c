/*
 * tls_files: what a context loads from files: the trust store (CAfile,
 * CApath or the system's) with the verification mode, and the client
 * certificate and key. Each file is opened first to say clearly why it
 * cannot be used. See include/mailtunnel/tls.h.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "mailtunnel/config.h"
#include "mailtunnel/tls.h"
#include "mailtunnel/util.h"
#include "tls_int.h"

/* open(2) a file to learn why it cannot be read; 0 or -1 (reported). */
static int
check_readable(struct mt_tls_build *b, const char *option, const char *path,
    int want_dir, struct stat *st)
{
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1 ||
	    fstat(fd, st) == -1) {
		mt_tls_problem(b, option, 1, "%s = %s: cannot read it: %s",
		    option, path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	close(fd);
	if (!want_dir && S_ISDIR(st->st_mode)) {
		mt_tls_problem(b, option, 1, "%s = %s is a directory; %s",
		    option, path, strcmp(option, "CAfile") == 0 ?
		    "use CApath for a directory of certificates" :
		    "give a PEM file");
		return -1;
	}
	if (want_dir && !S_ISDIR(st->st_mode)) {
		mt_tls_problem(b, option, 1, "%s = %s is not a directory; "
		    "use CAfile for a file of certificates", option, path);
		return -1;
	}
	return 0;
}

/* Whether dir holds at least one "hash.N" name that OpenSSL looks up. */
static int
has_hash_links(const char *dir)
{
	struct dirent *de;
	int found = 0;
	size_t i;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return 0;
	while (!found && (de = readdir(d)) != NULL) {
		for (i = 0; i < 8; i++)
			if (!strchr("0123456789abcdef", de->d_name[i]) ||
			    de->d_name[i] == '\0')
				break;
		found = (i == 8 && de->d_name[8] == '.' &&
		    de->d_name[9] >= '0' && de->d_name[9] <= '9');
	}
	closedir(d);
	return found;
}

static void
load_ca_file(struct mt_tls_build *b, const char *path)
{
	struct stat st;
	char why[128];

	if (check_readable(b, "CAfile", path, 0, &st) == -1)
		return;
	if (!SSL_CTX_load_verify_file(b->sc, path))
		mt_tls_problem(b, "CAfile", 1, "CAfile = %s: no certificate "
		    "could be loaded from it (%s); it should hold PEM "
		    "certificates", path, mt_tls_openssl_reason(why,
		    sizeof(why)));
}

static void
load_ca_path(struct mt_tls_build *b, const char *path)
{
	struct stat st;
	char why[128];

	if (check_readable(b, "CApath", path, 1, &st) == -1)
		return;
	if (!SSL_CTX_load_verify_dir(b->sc, path)) {
		mt_tls_problem(b, "CApath", 1, "CApath = %s: %s", path,
		    mt_tls_openssl_reason(why, sizeof(why)));
		return;
	}
	if (!has_hash_links(path))
		mt_tls_problem(b, "CApath", 0, "CApath = %s holds no hashed "
		    "certificate names, so nothing will be found there; run: "
		    "openssl rehash %s", path, path);
}

/* The system store is a file, a directory, or both; either will do. */
static int
system_store_exists(void)
{
	const char *file = getenv(X509_get_default_cert_file_env());
	const char *dir = getenv(X509_get_default_cert_dir_env());

	if (file == NULL)
		file = X509_get_default_cert_file();
	if (dir == NULL)
		dir = X509_get_default_cert_dir();
	return access(file, R_OK) == 0 || has_hash_links(dir);
}

void
mt_tls_set_trust(struct mt_tls_build *b)
{
	const struct mt_tls_conf *t = b->t;

	if (t->ca_file != NULL)
		load_ca_file(b, t->ca_file);
	if (t->ca_path != NULL)
		load_ca_path(b, t->ca_path);
	mt_strlcpy(b->ctx->pin_source, t->ca_file == NULL ? "CApath" :
	    t->ca_path == NULL ? "CAfile" : "CAfile or CApath",
	    sizeof(b->ctx->pin_source));
	if (!b->ctx->verify) {
		/* The one message that names the service in its text. */
		mt_config_report_add(b->report, b->svc->file,
		    mt_service_conf_line(b->svc, "verifyChain"), 0,
		    "certificate verification is OFF for [%s]: anyone on the "
		    "network path can read and change this traffic",
		    b->svc->name);
		if (t->check_host.n > 0 || t->check_ip.n > 0)
			mt_tls_problem(b, t->check_host.n > 0 ? "checkHost" :
			    "checkIP", 0, "checkHost and checkIP are not "
			    "checked while verification is off");
		SSL_CTX_set_verify(b->sc, SSL_VERIFY_NONE, NULL);
		return;
	}
	SSL_CTX_set_verify(b->sc, SSL_VERIFY_PEER, mt_tls_verify_cb);
	if (t->ca_file != NULL || t->ca_path != NULL)
		return;
	if (t->verify_peer) {
		mt_tls_problem(b, "verifyPeer", 1, "verifyPeer = yes needs "
		    "CAfile or CApath holding the server's own certificate");
		return;
	}
	if (!SSL_CTX_set_default_verify_paths(b->sc) || !system_store_exists())
		mt_tls_problem(b, "verifyChain", 0, "no system trust store "
		    "was found (%s): every server will be refused; install "
		    "ca-certificates or set CAfile",
		    X509_get_default_cert_dir());
	ERR_clear_error();
}

/* OpenSSL would prompt on the terminal for a passphrase; never do that. */
static int
no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
	*(int *)userdata = 1;
	return -1;
}

/* A private key must not be open to other users (group read is fine). */
static int
check_key_mode(struct mt_tls_build *b, const char *option, const char *path)
{
	struct stat st;

	if (check_readable(b, option, path, 0, &st) == -1)
		return -1;
	if ((st.st_mode & (S_IRWXO | S_IWGRP)) == 0)
		return 0;
	mt_tls_problem(b, option, 1, "%s = %s: other users can %s this "
	    "private key (mode %04o); run: chmod 600 %s", option, path,
	    (st.st_mode & S_IROTH) ? "read" : "change",
	    (unsigned)(st.st_mode & 07777), path);
	return -1;
}

static void
load_key(struct mt_tls_build *b, const char *option, const char *key)
{
	char why[128];
	int asked = 0;

	if (check_key_mode(b, option, key) == -1)
		return;
	SSL_CTX_set_default_passwd_cb(b->sc, no_passphrase);
	SSL_CTX_set_default_passwd_cb_userdata(b->sc, &asked);
	if (!SSL_CTX_use_PrivateKey_file(b->sc, key, SSL_FILETYPE_PEM)) {
		mt_tls_openssl_reason(why, sizeof(why));
		if (asked)
			mt_tls_problem(b, option, 1, "%s = %s is protected "
			    "by a passphrase, which mailtunnel cannot ask "
			    "for; remove it with: openssl pkey -in %s -out "
			    "NEW", option, key, key);
		else if (strstr(why, "mismatch") != NULL)
			mt_tls_problem(b, option, 1, "%s = %s does not match "
			    "cert = %s", option, key, b->t->cert);
		else
			mt_tls_problem(b, option, 1, "%s = %s: not a usable "
			    "private key (%s)", option, key, why);
	} else if (!SSL_CTX_check_private_key(b->sc)) {
		ERR_clear_error();
		mt_tls_problem(b, option, 1, "%s = %s does not match cert = "
		    "%s", option, key, b->t->cert);
	}
	SSL_CTX_set_default_passwd_cb(b->sc, NULL);
	SSL_CTX_set_default_passwd_cb_userdata(b->sc, NULL);
}

void
mt_tls_load_client_cert(struct mt_tls_build *b)
{
	const struct mt_tls_conf *t = b->t;
	struct stat st;
	char why[128];

	if (t->cert == NULL) {
		if (t->key != NULL)
			mt_tls_problem(b, "key", 1, "key = %s is set without "
			    "cert", t->key);
		return;
	}
	if (check_readable(b, "cert", t->cert, 0, &st) == -1)
		return;
	if (!SSL_CTX_use_certificate_chain_file(b->sc, t->cert)) {
		mt_tls_problem(b, "cert", 1, "cert = %s: not a usable "
		    "certificate (%s)", t->cert, mt_tls_openssl_reason(why,
		    sizeof(why)));
		return;
	}
	/* As stunnel: without key, the key is in the cert file. */
	load_key(b, t->key != NULL ? "key" : "cert",
	    t->key != NULL ? t->key : t->cert);
}
