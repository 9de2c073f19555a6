/*
 * test_tls_phrase: the pure mapping from failure facts to phrases, for
 * the cases a real handshake cannot easily produce here, and the sorting
 * of libevent's mixed error codes.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "mailtunnel/tls.h"
#include "tls_tests.h"

static struct mt_tls_failure
failure(void)
{
	struct mt_tls_failure f;

	memset(&f, 0, sizeof(f));
	f.min_version = TLS1_2_VERSION;
	f.sec_level = 2;
	return f;
}

static struct mt_tls_failure
ssl_failure(int reason)
{
	struct mt_tls_failure f = failure();

	f.ssl_error = SSL_ERROR_SSL;
	f.errs[0] = ERR_PACK(ERR_LIB_SSL, 0, reason);
	f.nerrs = 1;
	return f;
}

static const char *
phrase(const struct mt_tls_failure *f)
{
	static char buf[512];

	return mt_tls_failure_format(f, buf, sizeof(buf));
}

static void
test_verify_phrases(void **state)
{
	struct mt_tls_failure f = failure();

	(void)state;
	f.verify_error = X509_V_ERR_CA_KEY_TOO_SMALL;
	f.depth = 1;
	strcpy(f.key_type, "EC");
	f.key_bits = 160;
	strcpy(f.subject, "CN=Weak CA");
	assert_string_equal(phrase(&f), "key too weak: EC 160 bits (security "
	    "level 2 requires 224) (CN=Weak CA)");
	f.sec_level = 3;
	strcpy(f.key_type, "RSA");
	f.key_bits = 2048;
	assert_string_equal(phrase(&f), "key too weak: RSA 2048 bits "
	    "(security level 3 requires 3072) (CN=Weak CA)");
	f.verify_error = X509_V_ERR_CERT_REVOKED;
	f.depth = 0;
	assert_string_equal(phrase(&f), "certificate verification failed: "
	    "certificate revoked at depth 0 (CN=Weak CA)");
	f.verify_error = X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT;
	f.depth = 2;
	strcpy(f.issuer, "CN=Gone");
	assert_string_equal(phrase(&f), "unknown CA: issuer CN=Gone is not "
	    "trusted");
	/* No subject known: no empty parentheses. */
	f = failure();
	f.verify_error = X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT;
	assert_string_equal(phrase(&f), "self-signed certificate");
	f.verify_error = X509_V_OK;
	f.pin_miss = 1;
	assert_string_equal(phrase(&f), "certificate not pinned: not found in "
	    "CAfile");
}

static void
test_ssl_phrases(void **state)
{
	struct mt_tls_failure f;

	(void)state;
	f = ssl_failure(SSL_R_TLSV1_ALERT_INTERNAL_ERROR);
	assert_string_equal(phrase(&f), "TLS handshake failed: tlsv1 alert "
	    "internal error");
	f.established = 1;
	assert_string_equal(phrase(&f), "TLS error: tlsv1 alert internal "
	    "error");
	f = ssl_failure(SSL_R_DH_KEY_TOO_SMALL);
	assert_string_equal(phrase(&f), "key too weak: the server's DH key is "
	    "too small (security level 2 requires 2048 bits)");
	f = ssl_failure(SSL_R_UNSAFE_LEGACY_RENEGOTIATION_DISABLED);
	assert_string_equal(phrase(&f), "server lacks secure renegotiation "
	    "(RFC 5746); options = LEGACY_SERVER_CONNECT allows it, unsafely");
	f = ssl_failure(SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED);
	assert_string_equal(phrase(&f), "the server requires a client "
	    "certificate (set cert and key)");
	f = ssl_failure(SSL_R_TLSV1_ALERT_INSUFFICIENT_SECURITY);
	assert_string_equal(phrase(&f), "no shared cipher (the server finds "
	    "the offered ones too weak)");
	f = ssl_failure(SSL_R_NO_CIPHERS_AVAILABLE);
	assert_string_equal(phrase(&f), "no shared cipher (none is enabled "
	    "for the allowed protocol versions)");
	f = ssl_failure(SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE);
	assert_string_equal(phrase(&f), "no shared cipher (the server sent a "
	    "handshake failure alert)");
	f = ssl_failure(SSL_R_UNSUPPORTED_PROTOCOL);
	assert_string_equal(phrase(&f), "protocol version: server offers only "
	    "TLS 1.0/1.1 (floor is TLS 1.2)");
	f = ssl_failure(SSL_R_HTTP_REQUEST);
	assert_string_equal(phrase(&f), "server sent a plaintext reply, not "
	    "TLS (wrong port or STARTTLS needed?)");
	/* After the handshake a bad record is just that. */
	f = ssl_failure(SSL_R_WRONG_VERSION_NUMBER);
	f.established = 1;
	assert_string_equal(phrase(&f), "TLS error: wrong version number");
	f = ssl_failure(SSL_R_UNEXPECTED_EOF_WHILE_READING);
	f.established = 1;
	assert_string_equal(phrase(&f), "connection closed without TLS "
	    "close_notify");
	/* A system error in the queue reads as errno. */
	f = failure();
	f.errs[0] = ERR_SYSTEM_FLAG | ECONNRESET;
	f.nerrs = 1;
	assert_string_equal(phrase(&f), "TLS handshake failed: Connection "
	    "reset by peer");
}

static void
test_io_phrases(void **state)
{
	struct mt_tls_failure f = failure();
	char small[8];

	(void)state;
	f.ssl_error = SSL_ERROR_SYSCALL;
	assert_string_equal(phrase(&f), "connection closed during handshake");
	f.sys_errno = ECONNRESET;
	assert_string_equal(phrase(&f), "connection error during handshake: "
	    "Connection reset by peer");
	f.established = 1;
	assert_string_equal(phrase(&f), "connection error: Connection reset "
	    "by peer");
	/* A stale errno says nothing. */
	f.sys_errno = EAGAIN;
	assert_string_equal(phrase(&f), "connection closed without TLS "
	    "close_notify");
	f = ssl_failure(SSL_R_UNEXPECTED_EOF_WHILE_READING);
	f.sys_errno = ECONNRESET;
	assert_string_equal(phrase(&f), "connection closed during handshake");
	f = failure();
	f.ssl_error = SSL_ERROR_WANT_X509_LOOKUP;
	assert_string_equal(phrase(&f), "TLS handshake failed (SSL error 4)");
	/* Truncated, never overrun. */
	assert_string_equal(mt_tls_failure_format(&f, small, sizeof(small)),
	    "TLS han");
	assert_ptr_equal(mt_tls_failure_format(&f, small, 0), small);
}

/* libevent's queue, as popped: newest ERR code first, SSL code last. */
static void
test_popped_codes(void **state)
{
	struct mt_tls_ctx *ctx = tt_ctx(tt_svc());
	SSL *ssl = mt_tls_ssl_new(ctx, "mail.example.net", "995");
	unsigned long popped[3];
	char buf[256];

	(void)state;
	popped[0] = ERR_PACK(ERR_LIB_SSL, 0, SSL_R_WRONG_VERSION_NUMBER);
	popped[1] = SSL_ERROR_SSL;
	assert_string_equal(mt_tls_reason_codes(ssl, popped, 2, 0, buf,
	    sizeof(buf)), "server sent a plaintext reply, not TLS (wrong port "
	    "or STARTTLS needed?)");
	/* The oldest ERR code is the one that says most. */
	popped[0] = ERR_PACK(ERR_LIB_SSL, 0, SSL_R_RECORD_LENGTH_MISMATCH);
	popped[1] = ERR_PACK(ERR_LIB_SSL, 0, SSL_R_UNSUPPORTED_PROTOCOL);
	popped[2] = SSL_ERROR_SSL;
	assert_string_equal(mt_tls_reason_codes(ssl, popped, 3, 0, buf,
	    sizeof(buf)), "protocol version: server offers only TLS 1.0/1.1 "
	    "(floor is TLS 1.2)");
	/* Only an SSL_ERROR_SYSCALL code and an errno. */
	popped[0] = SSL_ERROR_SYSCALL;
	assert_string_equal(mt_tls_reason_codes(ssl, popped, 1, EPIPE, buf,
	    sizeof(buf)), "connection error during handshake: Broken pipe");
	/* Nothing at all (an older libevent keeps no SSL code). */
	assert_string_equal(mt_tls_reason_codes(ssl, popped, 0, 0, buf,
	    sizeof(buf)), "connection closed during handshake");
	SSL_free(ssl);
	mt_tls_ctx_free(ctx);
}

int
tt_run_phrase_tests(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verify_phrases),
		cmocka_unit_test(test_ssl_phrases),
		cmocka_unit_test(test_io_phrases),
		cmocka_unit_test(test_popped_codes),
	};

	return cmocka_run_group_tests_name("tls_phrase", tests, NULL, NULL);
}
