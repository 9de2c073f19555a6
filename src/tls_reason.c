/*
 * tls_reason: why a handshake failed, in words. mt_tls_failure_collect()
 * reads the facts off the SSL (and what the verify callback kept);
 * mt_tls_failure_format() is the pure mapping from facts to a phrase. See
 * include/mailtunnel/tls.h.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "mailtunnel/tls.h"
#include "mailtunnel/util.h"
#include "tls_int.h"

char *
mt_tls_sanitize(const char *s, size_t len, char *buf, size_t n)
{
	size_t i;

	if (len >= n)
		len = n - 1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		buf[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	buf[len] = '\0';
	return buf;
}

/* "CN=value" when the name has a CN, else the whole name, one line. */
static void
name_text(const X509_NAME *name, char *buf, size_t n)
{
	int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	unsigned char *utf8 = NULL;
	char tmp[MT_TLS_FAIL_NAME];
	int len;

	buf[0] = '\0';
	if (i >= 0 && (len = ASN1_STRING_to_UTF8(&utf8,
	    X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)))) >= 0) {
		snprintf(buf, n, "CN=%s", mt_tls_sanitize((char *)utf8,
		    (size_t)len, tmp, sizeof(tmp)));
		OPENSSL_free(utf8);
		return;
	}
	X509_NAME_oneline(name, tmp, sizeof(tmp));
	mt_tls_sanitize(tmp, strlen(tmp), buf, n);
}

static void
date_text(const ASN1_TIME *t, char *buf, size_t n)
{
	struct tm tm;

	buf[0] = '\0';
	if (t != NULL && ASN1_TIME_to_tm(t, &tm))
		strftime(buf, n, "%Y-%m-%d", &tm);
}

static const char *
digest_name(int nid)
{
	switch (nid) {
	case NID_md5: return "MD5";
	case NID_sha1: return "SHA-1";
	case NID_sha224: return "SHA-224";
	case NID_sha256: return "SHA-256";
	case NID_sha384: return "SHA-384";
	case NID_sha512: return "SHA-512";
	case NID_undef: return "none";
	default: return OBJ_nid2sn(nid);
	}
}

static const char *
key_type_name(const EVP_PKEY *pk)
{
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA: return "RSA";
	case EVP_PKEY_RSA_PSS: return "RSA-PSS";
	case EVP_PKEY_DSA: return "DSA";
	case EVP_PKEY_EC: return "EC";
	default: return EVP_PKEY_get0_type_name(pk);
	}
}

static void
describe_cert(X509 *cert, struct mt_tls_failure *f)
{
	const EVP_PKEY *pk = X509_get0_pubkey(cert);
	const char *type;
	int md, pkey;

	name_text(X509_get_subject_name(cert), f->subject, sizeof(f->subject));
	name_text(X509_get_issuer_name(cert), f->issuer, sizeof(f->issuer));
	date_text(X509_get0_notBefore(cert), f->not_before,
	    sizeof(f->not_before));
	date_text(X509_get0_notAfter(cert), f->not_after,
	    sizeof(f->not_after));
	if (pk != NULL) {
		type = key_type_name(pk);
		mt_strlcpy(f->key_type, type != NULL ? type : "?",
		    sizeof(f->key_type));
		f->key_bits = EVP_PKEY_get_bits(pk);
	}
	if (OBJ_find_sigid_algs(X509_get_signature_nid(cert), &md, &pkey))
		mt_strlcpy(f->sig_digest, digest_name(md),
		    sizeof(f->sig_digest));
}

/* Append one name to a ", " list, with "..." once it no longer fits. */
static void
list_add(char *buf, size_t n, const char *name)
{
	size_t len = strlen(buf), add = strlen(name) + (len > 0 ? 2 : 0);

	if (len + add + 5 > n) {
		if (len + 5 <= n && (len < 3 || strcmp(buf + len - 3, "...")))
			mt_strlcpy(buf + len, len > 0 ? ", ..." : "...",
			    n - len);
		return;
	}
	snprintf(buf + len, n - len, "%s%s", len > 0 ? ", " : "", name);
}

/* The DNS names and IP addresses of the server's certificate. */
static void
cert_names(X509 *leaf, char *buf, size_t n)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name,
	    NULL, NULL);
	char name[256], ip[INET6_ADDRSTRLEN];
	const GENERAL_NAME *g;
	int i, len;

	buf[0] = '\0';
	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		len = ASN1_STRING_length(g->d.ia5);
		if (g->type == GEN_DNS)
			list_add(buf, n, mt_tls_sanitize((const char *)
			    ASN1_STRING_get0_data(g->d.ia5), (size_t)len,
			    name, sizeof(name)));
		else if (g->type == GEN_IPADD && (len == 4 || len == 16) &&
		    inet_ntop(len == 4 ? AF_INET : AF_INET6,
		    ASN1_STRING_get0_data(g->d.ip), ip, sizeof(ip)) != NULL)
			list_add(buf, n, ip);
	}
	GENERAL_NAMES_free(gens);
	if (buf[0] == '\0') {
		name_text(X509_get_subject_name(leaf), name, sizeof(name));
		mt_strlcpy(buf, name[0] != '\0' ? name : "no name", n);
	}
}

static int
has_reason(const unsigned long *errs, size_t n, int reason)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (ERR_GET_LIB(errs[i]) == ERR_LIB_SSL &&
		    ERR_GET_REASON(errs[i]) == reason)
			return 1;
	return 0;
}

/* Verification facts: from our callback, or from OpenSSL's result. */
static void
collect_verify(const SSL *ssl, const struct mt_tls_conn *conn,
    struct mt_tls_failure *f)
{
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
	X509 *cert = NULL, *leaf = NULL;

	if (conn != NULL && conn->rejected) {
		f->verify_error = conn->verify_error;
		f->depth = conn->depth;
		f->sent = conn->sent;
		f->pin_miss = conn->pin_miss;
		cert = conn->cert;
		leaf = conn->leaf;
	} else if (has_reason(f->errs, f->nerrs,
	    SSL_R_CERTIFICATE_VERIFY_FAILED)) {
		f->verify_error = (int)SSL_get_verify_result(ssl);
		f->sent = chain != NULL ? sk_X509_num(chain) : 0;
		leaf = cert = chain != NULL ? sk_X509_value(chain, 0) : NULL;
	}
	if (cert != NULL)
		describe_cert(cert, f);
	if (leaf != NULL)
		cert_names(leaf, f->cert_names, sizeof(f->cert_names));
}

void
mt_tls_failure_collect(const SSL *ssl, int ssl_error,
    const unsigned long *errs, size_t nerrs, int sys_errno,
    struct mt_tls_failure *f)
{
	const struct mt_tls_ctx *ctx = mt_tls_ctx_of(ssl);
	const struct mt_tls_conn *conn = ctx != NULL ? mt_tls_conn_of(ssl) :
	    NULL;
	char host[256];

	memset(f, 0, sizeof(*f));
	f->ssl_error = ssl_error;
	f->sys_errno = sys_errno;
	for (f->nerrs = 0; f->nerrs < nerrs && f->nerrs < MT_TLS_FAIL_ERRS;
	    f->nerrs++)
		f->errs[f->nerrs] = errs[f->nerrs];
	f->established = SSL_is_init_finished(ssl);
	f->has_client_cert = SSL_get_certificate(ssl) != NULL;
	f->sec_level = SSL_get_security_level(ssl);
	f->min_version = ctx != NULL ? ctx->min_version :
	    (int)SSL_get_min_proto_version((SSL *)ssl);
	f->verify_error = X509_V_OK;
	collect_verify(ssl, conn, f);
	if (ctx == NULL || conn == NULL)
		return;
	f->cert_requested = conn->cert_requested;
	mt_strlcpy(f->pin_source, ctx->pin_source, sizeof(f->pin_source));
	mt_tls_sanitize(conn->key, conn->hostlen, host, sizeof(host));
	mt_tls_expected_names(ctx, host, f->expected, sizeof(f->expected));
}

char *
mt_tls_reason(const SSL *ssl, int ssl_error, char *buf, size_t n)
{
	unsigned long errs[MT_TLS_FAIL_ERRS], e;
	struct mt_tls_failure f;
	int sys_errno = errno;
	size_t k = 0;

	while ((e = ERR_get_error()) != 0)
		if (k < MT_TLS_FAIL_ERRS)
			errs[k++] = e;
	mt_tls_failure_collect(ssl, ssl_error, errs, k, sys_errno, &f);
	return mt_tls_failure_format(&f, buf, n);
}

/* libevent keeps SSL_get_error() codes next to ERR codes: tell them apart. */
static int
is_ssl_error_code(unsigned long c)
{
	return !ERR_SYSTEM_ERROR(c) && ERR_GET_LIB(c) == 0 && c <= 0xff;
}

char *
mt_tls_reason_codes(const SSL *ssl, const unsigned long *popped,
    size_t npopped, int sys_errno, char *buf, size_t n)
{
	unsigned long errs[MT_TLS_FAIL_ERRS];
	struct mt_tls_failure f;
	int ssl_error = 0;
	size_t i, k = 0;

	/* Popped newest first: walk backwards to read them in order. */
	for (i = npopped; i > 0; i--) {
		if (is_ssl_error_code(popped[i - 1])) {
			if (ssl_error == 0)
				ssl_error = (int)popped[i - 1];
		} else if (k < MT_TLS_FAIL_ERRS) {
			errs[k++] = popped[i - 1];
		}
	}
	if (ssl_error == 0)
		ssl_error = k > 0 ? SSL_ERROR_SSL : SSL_ERROR_SYSCALL;
	mt_tls_failure_collect(ssl, ssl_error, errs, k, sys_errno, &f);
	return mt_tls_failure_format(&f, buf, n);
}

char *
mt_tls_reason_bufferevent(struct bufferevent *bev, int sys_errno, char *buf,
    size_t n)
{
	struct mt_tls_failure f;
	unsigned long popped[8], c;
	size_t k = 0;
	SSL *ssl = bufferevent_openssl_get_ssl(bev);

	while (k < MT_ARRAY_LEN(popped) &&
	    (c = bufferevent_get_openssl_error(bev)) != 0)
		popped[k++] = c;
	if (ssl == NULL) {
		/* Not a TLS bufferevent: only errno can tell. */
		memset(&f, 0, sizeof(f));
		f.ssl_error = SSL_ERROR_SYSCALL;
		f.sys_errno = sys_errno;
		return mt_tls_failure_format(&f, buf, n);
	}
	return mt_tls_reason_codes(ssl, popped, k, sys_errno, buf, n);
}
