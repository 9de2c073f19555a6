/*
 * tls internals shared by src/tls*.c (and the unit test). Not installed.
 *
 * A struct mt_tls_ctx hangs off its SSL_CTX as ex_data and is freed by the
 * SSL_CTX's ex_data free hook, so it lives exactly as long as the SSL_CTX
 * (which every SSL made from it holds a reference on). A struct
 * mt_tls_conn hangs off each SSL the same way and dies with it.
 */
#ifndef MAILTUNNEL_TLS_INT_H
#define MAILTUNNEL_TLS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "mailtunnel/log.h"
#include "mailtunnel/tls.h"

/* "host port", the session cache key; longer targets are not cached. */
#define MT_TLS_KEY_MAX 320

/*
 * Client-side session cache, one per service. Entries are kept oldest
 * first; since every entry lives for the same timeout, that is also expiry
 * order, so expired entries are always at the head.
 */
struct mt_tls_cache_entry;
struct mt_tls_cache {
	pthread_mutex_t lock;
	struct mt_tls_cache_entry *head;	/* oldest */
	struct mt_tls_cache_entry *tail;	/* newest */
	size_t n;
	size_t max;				/* 0: no limit */
	uint64_t timeout_ms;			/* 0: nothing is cached */
};

int mt_tls_cache_init(struct mt_tls_cache *c, unsigned long max,
    unsigned long long timeout_s);
void mt_tls_cache_destroy(struct mt_tls_cache *c);
/*
 * Store a copy of sess for key: returns 1 when stored, 0 when not (not
 * resumable, caching off, key too long, no memory). Evicts expired entries
 * and the oldest beyond max.
 */
int mt_tls_cache_put(struct mt_tls_cache *c, const char *key,
    const SSL_SESSION *sess, uint64_t now_ms);
/*
 * The freshest unexpired session for key, owned by the caller, or NULL. A
 * TLS 1.3 session (ticket) leaves the cache: it is meant to be used once.
 * A TLS 1.2 session stays; the caller gets a copy.
 */
SSL_SESSION *mt_tls_cache_get(struct mt_tls_cache *c, const char *key,
    uint64_t now_ms);
size_t mt_tls_cache_count(struct mt_tls_cache *c);
uint64_t mt_tls_now_ms(void);

struct mt_tls_ctx {
	SSL_CTX *ssl_ctx;
	char *name;			/* service name, for log lines */
	int verify;			/* verifyChain or verifyPeer */
	int verify_chain;
	int verify_peer;
	char pin_source[24];		/* for "not found in CAfile" */
	char *sni;			/* the sni option; "" sends none */
	char **hosts;			/* checkHost values */
	size_t nhosts;
	char **ips;			/* checkIP values */
	size_t nips;
	int min_version;
	struct mt_tls_cache cache;
	atomic_ullong full;
	atomic_ullong resumed;
};

struct mt_tls_conn {
	int counted;			/* handshake counted in stats */
	int cert_requested;		/* asked for a client cert we lack */
	/* The first refusal seen by the verify callback. */
	int rejected;
	int verify_error;
	int depth;
	int sent;
	int pin_miss;
	X509 *cert;			/* the certificate at depth */
	X509 *leaf;			/* the server's own certificate */
	size_t hostlen;			/* key[0..hostlen) is the host */
	char key[];			/* "host port" */
};

/* What mt_tls_ctx_new() is building, and where to report problems. */
struct mt_tls_build {
	const struct mt_service_conf *svc;
	const struct mt_tls_conf *t;
	struct mt_config_report *report;
	SSL_CTX *sc;
	struct mt_tls_ctx *ctx;
	unsigned errors;
};
/* Report a problem with option, prefixed with "[service] "; count errors. */
void mt_tls_problem(struct mt_tls_build *b, const char *option, int error,
    const char *fmt, ...) MT_PRINTF(4, 5);
/* The reason of the oldest queued OpenSSL error; clears the queue. */
const char *mt_tls_openssl_reason(char *buf, size_t n);
/* tls_files.c: trust store and verification mode; client cert and key. */
void mt_tls_set_trust(struct mt_tls_build *b);
void mt_tls_load_client_cert(struct mt_tls_build *b);

/* ex_data indexes; 0 on success. */
int mt_tls_indexes(int *ctx_idx, int *conn_idx);
struct mt_tls_ctx *mt_tls_ctx_of(const SSL *ssl);
struct mt_tls_conn *mt_tls_conn_of(const SSL *ssl);

/* 1 when s is an IPv4 or IPv6 literal (brackets allowed around IPv6). */
int mt_tls_is_ip(const char *s);
/* Copy an IP literal without brackets into buf; returns buf. */
char *mt_tls_ip_unbracket(const char *s, char *buf, size_t n);

/* The verify callback (tls_verify.c) and the per-SSL name setup. */
int mt_tls_verify_cb(int ok, X509_STORE_CTX *xs);
/* Called when the server asks for a client certificate we do not have. */
int mt_tls_client_cert_cb(SSL *ssl, X509 **x509, EVP_PKEY **pkey);
int mt_tls_set_peer_names(SSL *ssl, const struct mt_tls_ctx *ctx,
    const char *host);
/* Describe what was checked for this connection, for messages. */
void mt_tls_expected_names(const struct mt_tls_ctx *ctx, const char *host,
    char *buf, size_t n);

/* Session callbacks (tls_session.c). */
int mt_tls_new_session_cb(SSL *ssl, SSL_SESSION *sess);
void mt_tls_info_cb(const SSL *ssl, int where, int ret);

/* Copy s, replacing control characters, for a log line; returns buf. */
char *mt_tls_sanitize(const char *s, size_t len, char *buf, size_t n);

#endif
