/*
 * tls_testpki: test PKI, test server and handshake driver for test_tls.
 * See tls_testpki.h.
 */
#include "config.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "mailtunnel/config.h"
#include "mailtunnel/tls.h"
#include "mailtunnel/util.h"
#include "config_int.h"
#include "tls_testpki.h"

static EVP_PKEY *
make_key(int rsa_bits)
{
	if (rsa_bits > 0)
		return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)rsa_bits);
	return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* Add one extension given in openssl.cnf syntax. */
static int
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value)) == NULL)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

/* "DNS:a,DNS:b,IP:1.2.3.4" from the comma lists of spec. */
static void
san_value(const struct tp_spec *s, char *buf, size_t n)
{
	const char *lists[2] = { s->dns, s->ip }, *tags[2] = { "DNS", "IP" };
	char tmp[256], *tok, *save;
	size_t i, len;

	buf[0] = '\0';
	for (i = 0; i < 2; i++) {
		if (lists[i] == NULL)
			continue;
		mt_strlcpy(tmp, lists[i], sizeof(tmp));
		for (tok = strtok_r(tmp, ",", &save); tok != NULL;
		    tok = strtok_r(NULL, ",", &save)) {
			len = strlen(buf);
			snprintf(buf + len, n - len, "%s%s:%s",
			    len > 0 ? "," : "", tags[i], tok);
		}
	}
}

static int
set_times(X509 *x, const struct tp_spec *s)
{
	if (s->not_before != NULL) {
		if (!ASN1_TIME_set_string(X509_getm_notBefore(x),
		    s->not_before))
			return -1;
	} else if (X509_gmtime_adj(X509_getm_notBefore(x), -86400) == NULL) {
		return -1;
	}
	if (s->not_after != NULL)
		return ASN1_TIME_set_string(X509_getm_notAfter(x),
		    s->not_after) ? 0 : -1;
	return X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400) != NULL ?
	    0 : -1;
}

static int
add_exts(X509 *x, X509 *issuer, const struct tp_spec *s)
{
	char san[512];

	san_value(s, san, sizeof(san));
	if (add_ext(x, issuer, NID_basic_constraints, s->ca ?
	    "critical,CA:TRUE" : "critical,CA:FALSE") == -1 ||
	    add_ext(x, issuer, NID_key_usage, s->ca ?
	    "critical,keyCertSign,cRLSign" :
	    "critical,digitalSignature,keyEncipherment") == -1 ||
	    add_ext(x, issuer, NID_subject_key_identifier, "hash") == -1 ||
	    add_ext(x, issuer, NID_authority_key_identifier, "keyid") == -1)
		return -1;
	if (san[0] != '\0' &&
	    add_ext(x, issuer, NID_subject_alt_name, san) == -1)
		return -1;
	if (s->eku != NULL && add_ext(x, issuer, NID_ext_key_usage,
	    s->eku) == -1)
		return -1;
	return 0;
}

int
tp_make(struct tp_cert *out, const struct tp_spec *s,
    const struct tp_cert *issuer)
{
	static long serial = 1000;
	X509 *x = X509_new();
	EVP_PKEY *key = make_key(s->rsa_bits);
	X509_NAME *name = X509_NAME_new();

	if (x == NULL || key == NULL || name == NULL)
		goto err;
	if (!X509_set_version(x, X509_VERSION_3) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(x), serial++) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)s->cn, -1, -1, 0) ||
	    !X509_set_subject_name(x, name) ||
	    !X509_set_issuer_name(x, issuer != NULL ?
	    X509_get_subject_name(issuer->x) : name) ||
	    !X509_set_pubkey(x, key) || set_times(x, s) == -1 ||
	    add_exts(x, issuer != NULL ? issuer->x : x, s) == -1 ||
	    !X509_sign(x, issuer != NULL ? issuer->key : key,
	    s->md != NULL ? s->md : EVP_sha256()))
		goto err;
	X509_NAME_free(name);
	out->x = x;
	out->key = key;
	return 0;
err:
	ERR_print_errors_fp(stderr);
	X509_NAME_free(name);
	EVP_PKEY_free(key);
	X509_free(x);
	return -1;
}

void
tp_cert_free(struct tp_cert *c)
{
	X509_free(c->x);
	EVP_PKEY_free(c->key);
	c->x = NULL;
	c->key = NULL;
}

int
tp_write_pem(const char *path, mode_t mode, X509 *const *certs,
    size_t ncerts, EVP_PKEY *key)
{
	FILE *f;
	size_t i;
	int fd, ok = 1;

	unlink(path);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode)) == -1)
		return -1;
	/* The umask must not decide the mode under test. */
	if (fchmod(fd, mode) == -1 || (f = fdopen(fd, "w")) == NULL) {
		close(fd);
		return -1;
	}
	for (i = 0; i < ncerts; i++)
		ok = ok && PEM_write_X509(f, certs[i]);
	if (key != NULL)
		ok = ok && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL,
		    NULL);
	return (fclose(f) == 0 && ok) ? 0 : -1;
}

SSL_CTX *
tp_server_ctx(const struct tp_server_opts *o)
{
	SSL_CTX *sc = SSL_CTX_new(TLS_server_method());
	size_t i;

	if (sc == NULL)
		return NULL;
	SSL_CTX_set_security_level(sc, 0);
	/* TLS 1.0/1.1 need the legacy ciphers at level 0. */
	SSL_CTX_set_cipher_list(sc, "DEFAULT:@SECLEVEL=0");
	if (!SSL_CTX_use_certificate(sc, o->leaf->x) ||
	    !SSL_CTX_use_PrivateKey(sc, o->leaf->key))
		goto err;
	for (i = 0; i < o->nchain; i++)
		if (!SSL_CTX_add1_chain_cert(sc, o->chain[i]))
			goto err;
	if (o->ciphers != NULL && !SSL_CTX_set_cipher_list(sc, o->ciphers))
		goto err;
	if (o->client_ca != NULL) {
		if (!X509_STORE_add_cert(SSL_CTX_get_cert_store(sc),
		    o->client_ca))
			goto err;
		SSL_CTX_set_verify(sc, SSL_VERIFY_PEER |
		    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	SSL_CTX_set_min_proto_version(sc, o->min_version);
	SSL_CTX_set_max_proto_version(sc, o->max_version);
	SSL_CTX_set_session_id_context(sc, (const unsigned char *)"tp", 2);
	if (o->num_tickets >= 0)
		SSL_CTX_set_num_tickets(sc, (size_t)o->num_tickets);
	if (o->no_cache) {
		SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_options(sc, SSL_OP_NO_TICKET);
		SSL_CTX_set_num_tickets(sc, 0);
	}
	return sc;
err:
	ERR_print_errors_fp(stderr);
	SSL_CTX_free(sc);
	return NULL;
}

/* One handshake step; 1 done, 0 wants more, -1 failed (error in *err). */
static int
step(SSL *ssl, int *err)
{
	int rc = SSL_do_handshake(ssl);

	if (rc == 1)
		return 1;
	*err = SSL_get_error(ssl, rc);
	return (*err == SSL_ERROR_WANT_READ || *err == SSL_ERROR_WANT_WRITE) ?
	    0 : -1;
}

/* Drive both sides until each is done or one fails. */
static void
drive(SSL *c, SSL *s, BIO *sbio, struct tp_result *r)
{
	int cdone = 0, sdone = 0, sfail = 0, rc, err;
	char buf[16];
	int i;

	for (i = 0; i < 200 && !(cdone && sdone); i++) {
		if (!cdone) {
			if ((rc = step(c, &err)) == -1) {
				/* Read it before the server adds to it. */
				mt_tls_reason(c, err, r->reason,
				    sizeof(r->reason));
				return;
			}
			cdone = rc;
		}
		if (s != NULL && !sdone && !sfail) {
			if ((rc = step(s, &err)) == -1) {
				ERR_clear_error();
				sfail = 1;
				BIO_shutdown_wr(sbio);
			}
			sdone = rc == 1;
		}
		if (s == NULL)
			sdone = 1;
	}
	r->ok = cdone && sdone;
	if (r->ok)
		return;
	snprintf(r->reason, sizeof(r->reason), "handshake stalled");
	/* TLS 1.3: the server may refuse a client that is done already. */
	if (cdone && sfail && (rc = SSL_read(c, buf, sizeof(buf))) <= 0)
		mt_tls_reason(c, SSL_get_error(c, rc), r->reason,
		    sizeof(r->reason));
}

/* Let the server talk so that the client reads its TLS 1.3 tickets. */
static void
exchange(SSL *c, SSL *s)
{
	char buf[16];

	if (SSL_write(s, "ok", 2) != 2 || SSL_read(c, buf, sizeof(buf)) != 2)
		ERR_clear_error();
	/*
	 * The server closes properly: an OpenSSL server forgets a session
	 * whose connection it drops without close_notify.
	 */
	if (SSL_shutdown(s) < 0)
		ERR_clear_error();
}

int
tp_handshake(SSL *client, SSL_CTX *sctx, const char *raw, struct tp_result *r)
{
	BIO *cbio = NULL, *sbio = NULL;
	SSL *server = NULL;
	const char *sni;

	memset(r, 0, sizeof(*r));
	ERR_clear_error();
	if (!BIO_new_bio_pair(&cbio, 0, &sbio, 0))
		goto out;
	SSL_set_bio(client, cbio, cbio);
	if (sctx != NULL) {
		if ((server = SSL_new(sctx)) == NULL)
			goto out;
		SSL_set_bio(server, sbio, sbio);
		SSL_set_accept_state(server);
		sbio = NULL;
	} else {
		if (raw[0] != '\0')
			BIO_write(sbio, raw, (int)strlen(raw));
		BIO_shutdown_wr(sbio);
	}
	drive(client, server, server != NULL ? SSL_get_wbio(server) : sbio, r);
	if (r->ok && server != NULL) {
		exchange(client, server);
		r->resumed = SSL_session_reused(client);
		mt_tls_describe(client, r->describe, sizeof(r->describe));
		sni = SSL_get_servername(server, TLSEXT_NAMETYPE_host_name);
		mt_strlcpy(r->sni, sni != NULL ? sni : "", sizeof(r->sni));
	}
out:
	BIO_free(sbio);
	SSL_free(server);
	SSL_free(client);
	ERR_clear_error();
	return r->ok;
}

/* --- Config stand-ins. ------------------------------------------------ */

static const struct {
	const char *name;
	unsigned line;
} tp_lines[] = {
	{ "CAfile", 11 }, { "CApath", 12 }, { "cert", 13 }, { "key", 14 },
	{ "ciphers", 15 }, { "ciphersuites", 16 }, { "curves", 17 },
	{ "verifyChain", 18 }, { "verifyPeer", 19 }, { "checkHost", 20 },
	{ "checkIP", 21 }, { "sslVersionMin", 22 }, { "sslVersionMax", 23 },
};

unsigned
tp_line(const char *option)
{
	size_t i;

	for (i = 0; i < MT_ARRAY_LEN(tp_lines); i++)
		if (strcmp(tp_lines[i].name, option) == 0)
			return tp_lines[i].line;
	return 1;
}

/* Mark the options as set on the lines above, as the loader would. */
void
tp_mark_lines(struct mt_service_conf *svc)
{
	const struct mt_option *opt;
	size_t i, idx;

	for (i = 0; i < MT_ARRAY_LEN(tp_lines); i++) {
		if ((opt = mt_option_find(tp_lines[i].name,
		    MT_SCOPE_SERVICE)) == NULL)
			continue;
		idx = mt_option_index(opt);
		mt_optset_add(&svc->set, idx);
		svc->set_line[idx] = tp_lines[i].line;
	}
}

const struct mt_config_problem *
tp_report_find(const struct mt_config_report *report, const char *needle)
{
	size_t i;

	for (i = 0; i < report->n; i++)
		if (strstr(report->v[i].msg, needle) != NULL)
			return &report->v[i];
	return NULL;
}
