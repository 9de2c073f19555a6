/*
 * tls_phrase: mt_tls_failure_format(), the pure mapping from what went
 * wrong in a handshake (struct mt_tls_failure) to one phrase for a log
 * line. No I/O and no state: OpenSSL is asked only for its static reason
 * strings.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "mailtunnel/tls.h"

/* The bits a key needs at each OpenSSL security level (0 to 5). */
static int
level_bits(const char *key_type, int level)
{
	static const int ffc[] = { 0, 1024, 2048, 3072, 7680, 15360 };
	static const int ec[] = { 0, 160, 224, 256, 384, 512 };

	if (level < 0)
		level = 0;
	if (level > 5)
		level = 5;
	return strcmp(key_type, "EC") == 0 ? ec[level] : ffc[level];
}

/* " (CN=...)" when the subject is known. */
static const char *
paren(const char *s, char *buf, size_t n)
{
	if (s[0] == '\0')
		return "";
	snprintf(buf, n, " (%s)", s);
	return buf;
}

static void
format_missing_issuer(const struct mt_tls_failure *f, char *buf, size_t n)
{
	/* A leaf whose issuer is nowhere: the chain was cut short. */
	if (f->depth == 0)
		snprintf(buf, n, "incomplete chain: the server did not send "
		    "the intermediate certificate for %s (issued by %s, which "
		    "is neither sent nor trusted)", f->subject, f->issuer);
	else
		snprintf(buf, n, "unknown CA: issuer %s is not trusted",
		    f->issuer);
}

static void
format_verify(const struct mt_tls_failure *f, char *buf, size_t n)
{
	char p[MT_TLS_FAIL_NAME + 4];

	if (f->pin_miss) {
		snprintf(buf, n, "certificate not pinned: not found in %s%s",
		    f->pin_source[0] != '\0' ? f->pin_source : "CAfile",
		    paren(f->subject, p, sizeof(p)));
		return;
	}
	switch (f->verify_error) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
		snprintf(buf, n, "certificate expired on %s%s", f->not_after,
		    paren(f->subject, p, sizeof(p)));
		break;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		snprintf(buf, n, "certificate not yet valid until %s%s",
		    f->not_before, paren(f->subject, p, sizeof(p)));
		break;
	case X509_V_ERR_HOSTNAME_MISMATCH:
		snprintf(buf, n, "host name mismatch: certificate is for %s, "
		    "expected %s", f->cert_names, f->expected);
		break;
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		snprintf(buf, n, "IP address mismatch: %s not in certificate "
		    "(certificate is for %s)", f->expected, f->cert_names);
		break;
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		snprintf(buf, n, "self-signed certificate%s",
		    paren(f->subject, p, sizeof(p)));
		break;
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		/* The root that was sent is its own issuer. */
		snprintf(buf, n, "unknown CA: issuer %s is not trusted",
		    f->subject);
		break;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		format_missing_issuer(f, buf, n);
		break;
	case X509_V_ERR_EE_KEY_TOO_SMALL:
	case X509_V_ERR_CA_KEY_TOO_SMALL:
		snprintf(buf, n, "key too weak: %s %d bits (security level %d "
		    "requires %d)%s", f->key_type, f->key_bits, f->sec_level,
		    level_bits(f->key_type, f->sec_level),
		    paren(f->subject, p, sizeof(p)));
		break;
	case X509_V_ERR_CA_MD_TOO_WEAK:
		snprintf(buf, n, "signature algorithm too weak: %s (security "
		    "level %d)%s", f->sig_digest, f->sec_level,
		    paren(f->subject, p, sizeof(p)));
		break;
	case X509_V_ERR_INVALID_PURPOSE:
		snprintf(buf, n, "certificate not valid for a TLS server "
		    "(extended key usage)%s", paren(f->subject, p, sizeof(p)));
		break;
	default:
		snprintf(buf, n, "certificate verification failed: %s at "
		    "depth %d%s", X509_verify_cert_error_string(
		    f->verify_error), f->depth, paren(f->subject, p,
		    sizeof(p)));
		break;
	}
}

/* The SSL-library error that says most: the first one queued. */
static unsigned long
main_error(const struct mt_tls_failure *f)
{
	size_t i;

	for (i = 0; i < f->nerrs; i++)
		if (ERR_GET_LIB(f->errs[i]) == ERR_LIB_SSL)
			return f->errs[i];
	return f->nerrs > 0 ? f->errs[0] : 0;
}

/* strerror() may share a buffer between threads; this runs in workers. */
static const char *
errno_text(int e, char *buf, size_t n)
{
	return strerror_r(e, buf, n);
}

static const char *
reason_text(unsigned long e, char *buf, size_t n)
{
	const char *r = ERR_reason_error_string(e);

	if (r == NULL && ERR_SYSTEM_ERROR(e))
		r = errno_text((int)ERR_GET_REASON(e), buf, n);
	return r != NULL ? r : "unknown error";
}

static void
format_version(const struct mt_tls_failure *f, char *buf, size_t n)
{
	if (f->min_version >= TLS1_3_VERSION)
		snprintf(buf, n, "protocol version: server offers only TLS 1.2 "
		    "or older (floor is TLS 1.3)");
	else
		snprintf(buf, n, "protocol version: server offers only TLS "
		    "1.0/1.1 (floor is TLS 1.2)");
}

/*
 * errno means something only after SSL_ERROR_SYSCALL, and then never "try
 * again" (that would have been SSL_ERROR_WANT_READ): otherwise it is stale.
 */
static int
real_errno(const struct mt_tls_failure *f)
{
	if (f->ssl_error != SSL_ERROR_SYSCALL || f->sys_errno == EAGAIN ||
	    f->sys_errno == EWOULDBLOCK || f->sys_errno == EINTR)
		return 0;
	return f->sys_errno;
}

static void
format_closed(const struct mt_tls_failure *f, char *buf, size_t n)
{
	char tmp[128];

	if (real_errno(f) != 0)
		snprintf(buf, n, "connection %s: %s", f->established ?
		    "error" : "error during handshake",
		    errno_text(f->sys_errno, tmp, sizeof(tmp)));
	else if (f->established)
		snprintf(buf, n, "connection closed without TLS close_notify");
	else
		snprintf(buf, n, "connection closed during handshake");
}

/* Alerts about client certificates; 0 when it is not one of those. */
static int
format_client_cert(const struct mt_tls_failure *f, int reason, char *buf,
    size_t n)
{
	switch (reason) {
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
	case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
		/* TLS 1.2 servers say "handshake failure" for a missing one. */
		if (reason != SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED &&
		    !f->cert_requested)
			return 0;
		snprintf(buf, n, "the server requires a client certificate "
		    "(set cert and key)");
		return 1;
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
		if (!f->has_client_cert)
			return 0;
		snprintf(buf, n, "the server refused our client certificate "
		    "(%s)", ERR_reason_error_string(ERR_PACK(ERR_LIB_SSL, 0,
		    reason)));
		return 1;
	default:
		return 0;
	}
}

/* A phrase for an SSL-library reason; 0 when there is none. */
static int
format_ssl_reason(const struct mt_tls_failure *f, int reason, char *buf,
    size_t n)
{
	if (format_client_cert(f, reason, buf, n))
		return 1;
	switch (reason) {
	case SSL_R_WRONG_VERSION_NUMBER:
	case SSL_R_HTTP_REQUEST:
		if (f->established)
			return 0;
		snprintf(buf, n, "server sent a plaintext reply, not TLS "
		    "(wrong port or STARTTLS needed?)");
		return 1;
	case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
	case SSL_R_UNSUPPORTED_PROTOCOL:
	case SSL_R_VERSION_TOO_LOW:
	case SSL_R_WRONG_SSL_VERSION:
		format_version(f, buf, n);
		return 1;
	case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
		snprintf(buf, n, "no shared cipher (the server sent a "
		    "handshake failure alert)");
		return 1;
	case SSL_R_TLSV1_ALERT_INSUFFICIENT_SECURITY:
		snprintf(buf, n, "no shared cipher (the server finds the "
		    "offered ones too weak)");
		return 1;
	case SSL_R_NO_SHARED_CIPHER:
	case SSL_R_NO_CIPHERS_AVAILABLE:
		snprintf(buf, n, "no shared cipher (none is enabled for the "
		    "allowed protocol versions)");
		return 1;
	case SSL_R_UNEXPECTED_EOF_WHILE_READING:
		format_closed(f, buf, n);
		return 1;
	case SSL_R_DH_KEY_TOO_SMALL:
		snprintf(buf, n, "key too weak: the server's DH key is too "
		    "small (security level %d requires %d bits)", f->sec_level,
		    level_bits("DH", f->sec_level));
		return 1;
	case SSL_R_UNSAFE_LEGACY_RENEGOTIATION_DISABLED:
		snprintf(buf, n, "server lacks secure renegotiation (RFC "
		    "5746); options = LEGACY_SERVER_CONNECT allows it, "
		    "unsafely");
		return 1;
	default:
		return 0;
	}
}

char *
mt_tls_failure_format(const struct mt_tls_failure *f, char *buf, size_t n)
{
	char tmp[128];
	unsigned long e;

	if (n == 0)
		return buf;
	buf[0] = '\0';
	if (f->verify_error != X509_V_OK || f->pin_miss) {
		format_verify(f, buf, n);
		return buf;
	}
	e = main_error(f);
	if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL &&
	    format_ssl_reason(f, ERR_GET_REASON(e), buf, n))
		return buf;
	if (e != 0)
		snprintf(buf, n, "TLS %s: %s", f->established ? "error" :
		    "handshake failed", reason_text(e, tmp, sizeof(tmp)));
	else if (f->ssl_error == SSL_ERROR_SYSCALL ||
	    f->ssl_error == SSL_ERROR_ZERO_RETURN || f->ssl_error == 0)
		format_closed(f, buf, n);
	else
		snprintf(buf, n, "TLS %s (SSL error %d)", f->established ?
		    "error" : "handshake failed", f->ssl_error);
	return buf;
}
