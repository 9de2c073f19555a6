/*
 * tls: the TLS client side shared by tunnels and fetchers.
 *
 * A struct mt_tls_ctx is built once per service from its struct
 * mt_tls_conf: it owns one SSL_CTX (TLS_client_method) with verification,
 * protocol floor, security level and the service's client-side session
 * cache. Every worker thread may use the same context at once. Each
 * connection then gets its own SSL from mt_tls_ssl_new(), which sets SNI,
 * the names to verify and a cached session for the target.
 *
 * Lifetime: mt_tls_ctx_free() drops the caller's reference; an SSL made by
 * mt_tls_ssl_new() holds its own reference on the context (through its
 * SSL_CTX), so connections still running after a reload stay valid and the
 * context and its cache go away with the last of them. The SSL belongs to
 * the caller (or to the bufferevent it is handed to) and is freed with
 * SSL_free().
 *
 * After a failed handshake, mt_tls_reason() and friends turn what OpenSSL
 * knows into one phrase fit for a log line ("certificate expired on
 * 2026-01-01 (CN=mail.example.net)"). The mapping itself is the pure
 * function mt_tls_failure_format() over a struct mt_tls_failure, so it can
 * be tested without a network.
 */
#ifndef MAILTUNNEL_TLS_H
#define MAILTUNNEL_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "mailtunnel/config.h"

struct bufferevent;
struct mt_tls_ctx;

/* Defaults used when a configuration leaves these at zero. */
#define MT_TLS_MIN_VERSION TLS1_2_VERSION
#define MT_TLS_SECURITY_LEVEL 2

/*
 * Build the context of service svc from svc->tls. Every problem goes to
 * report with the file:line of the option that causes it, as an error that
 * makes this return NULL, or as a warning (verifyChain = no) that does
 * not. Lines come from mt_service_conf_line(svc, NAME) with NAME one of
 * verifyChain, verifyPeer, CAfile, CApath, checkHost, checkIP, cert, key,
 * ciphers, ciphersuites, curves, sslVersionMax, sslVersionMin, client. All
 * options are checked even after the first error, so that `mailtunnel -t`
 * shows every problem at once. Nothing is logged. Keys and certificates
 * are read now, so call this before dropping privileges.
 *
 * Sessions: up to session_cache_size (0: no limit but time) are kept for
 * session_cache_timeout seconds (0: no resumption at all).
 */
struct mt_tls_ctx *mt_tls_ctx_new(const struct mt_service_conf *svc,
    struct mt_config_report *report);
/* Drop the caller's reference (see the lifetime note above). NULL is fine. */
void mt_tls_ctx_free(struct mt_tls_ctx *ctx);

/*
 * A client SSL for one connection to target_host:target_port (host NULL
 * means localhost; an IPv6 literal may be given with or without brackets).
 * SNI is the sni option, else the first checkHost, else target_host, and is
 * never sent for an IP literal. The peer is checked against checkHost and
 * checkIP when set, else against the SNI name, else against target_host (by
 * address when it is an IP literal). A cached session for this target is
 * offered for resumption. The SSL is in connect state. NULL when memory
 * runs out (logged).
 */
SSL *mt_tls_ssl_new(struct mt_tls_ctx *ctx, const char *target_host,
    const char *target_port);

/* Handshake and cache counters of a context, for logs and tests. */
struct mt_tls_stats {
	unsigned long long full;	/* handshakes with a new session */
	unsigned long long resumed;	/* handshakes that resumed one */
	size_t cached;			/* sessions in the cache now */
};
void mt_tls_ctx_stats(struct mt_tls_ctx *ctx, struct mt_tls_stats *st);

/*
 * "TLSv1.3 TLS_AES_256_GCM_SHA384, resumed" (or ", full handshake") for an
 * info line after a handshake. Always NUL-terminates buf; returns buf.
 */
char *mt_tls_describe(const SSL *ssl, char *buf, size_t n);

/*
 * What went wrong in a handshake, as plain facts. Strings are already
 * sanitized for a log line (no control characters) and may be empty.
 */
#define MT_TLS_FAIL_NAME 160
#define MT_TLS_FAIL_ERRS 4
struct mt_tls_failure {
	int ssl_error;		/* SSL_get_error() code; 0: unknown */
	int sys_errno;		/* errno; used after SSL_ERROR_SYSCALL only */
	unsigned long errs[MT_TLS_FAIL_ERRS];	/* ERR codes, oldest first */
	size_t nerrs;
	int established;	/* the handshake had completed */
	int cert_requested;	/* the server asked for a client cert; none */
	int has_client_cert;	/* we have one to send */
	int min_version;	/* the protocol floor */
	int sec_level;		/* OpenSSL security level in force */

	/* Set when certificate verification refused the server. */
	int verify_error;	/* X509_V_ERR_*; X509_V_OK: it did not */
	int depth;		/* where in the chain (0: the server's own) */
	int sent;		/* certificates the server sent; 0: unknown */
	int pin_miss;		/* verifyPeer: certificate not in the store */
	char pin_source[24];	/* "CAfile", "CApath", "CAfile or CApath" */
	char subject[MT_TLS_FAIL_NAME];	/* of the certificate at depth */
	char issuer[MT_TLS_FAIL_NAME];
	char not_before[16];	/* YYYY-MM-DD */
	char not_after[16];
	char key_type[16];	/* "RSA", "EC", ... of that certificate */
	int key_bits;
	char sig_digest[24];	/* "SHA-1", ... of its signature */
	char cert_names[256];	/* DNS names and IPs of the server's cert */
	char expected[256];	/* the names or addresses that were checked */
};

/*
 * Gather the facts about a failed handshake on ssl. ssl_error is the
 * SSL_get_error() code (0 if unknown), errs the OpenSSL error codes (oldest
 * first), sys_errno the errno of a failed system call. ssl may come from
 * anywhere, but only one made by mt_tls_ssl_new() knows the certificate
 * that was refused and the names that were expected.
 */
void mt_tls_failure_collect(const SSL *ssl, int ssl_error,
    const unsigned long *errs, size_t nerrs, int sys_errno,
    struct mt_tls_failure *f);
/* The phrase for f; pure. Always NUL-terminates buf; returns buf. */
char *mt_tls_failure_format(const struct mt_tls_failure *f, char *buf,
    size_t n);

/*
 * After SSL_do_handshake() (or SSL_read/SSL_write) failed on this thread
 * with SSL_get_error() == ssl_error: read errno, drain the thread's OpenSSL
 * error queue and return the phrase in buf.
 */
char *mt_tls_reason(const SSL *ssl, int ssl_error, char *buf, size_t n);

/*
 * The same for a libevent 2.1 bufferevent_openssl that reported
 * BEV_EVENT_ERROR. Such a bufferevent keeps at most three codes: the
 * SSL_get_error() code of the failed call (a small number, no library
 * part), then the first OpenSSL error codes, and
 * bufferevent_get_openssl_error() hands them back newest first.
 * mt_tls_reason_codes() takes them in that popped order and sorts them out;
 * mt_tls_reason_bufferevent() pops them itself. Call it first thing in the
 * event callback, passing the errno you saw there (EVUTIL_SOCKET_ERROR()).
 */
char *mt_tls_reason_codes(const SSL *ssl, const unsigned long *popped,
    size_t npopped, int sys_errno, char *buf, size_t n);
char *mt_tls_reason_bufferevent(struct bufferevent *bev, int sys_errno,
    char *buf, size_t n);

#endif
