/*
 * tls_session: the client-side session cache of a service, and the
 * handshake counters.
 *
 * OpenSSL hands every new session to mt_tls_new_session_cb(): once after a
 * TLS 1.2 handshake, and once per ticket with TLS 1.3, where tickets come
 * after the handshake (usually two). The cache keeps them per target
 * ("host port") for a fixed time, up to a number of entries; a connection
 * takes the freshest one for its target. A TLS 1.3 ticket leaves the cache
 * when taken (RFC 8446 wants tickets used once); a TLS 1.2 session stays
 * and may be resumed by several connections.
 *
 * The cache keeps private copies of sessions, never the objects a live SSL
 * uses: OpenSSL marks a connection's session as not resumable when the SSL
 * is freed without sending close_notify (libevent's bufferevents do just
 * that) or when a TLS 1.2 ticket is renewed, and a shared object would
 * spoil the cache for every later connection.
 *
 * Several worker threads share one cache: the mutex covers only the list
 * operations; copying, allocation and freeing happen outside it.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ssl.h>

#include "mailtunnel/tls.h"
#include "tls_int.h"

struct mt_tls_cache_entry {
	struct mt_tls_cache_entry *prev;
	struct mt_tls_cache_entry *next;
	SSL_SESSION *sess;
	uint64_t expires_ms;
	uint32_t hash;
	int once;			/* TLS 1.3: taken out when used */
	char key[];
};

uint64_t
mt_tls_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* FNV-1a: only to skip most string compares. */
static uint32_t
key_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

int
mt_tls_cache_init(struct mt_tls_cache *c, unsigned long max,
    unsigned long long timeout_s)
{
	memset(c, 0, sizeof(*c));
	if (pthread_mutex_init(&c->lock, NULL) != 0)
		return -1;
	c->max = max;
	c->timeout_ms = timeout_s > UINT64_MAX / 1000 ? UINT64_MAX :
	    timeout_s * 1000;
	return 0;
}

static void
entries_free(struct mt_tls_cache_entry *e)
{
	struct mt_tls_cache_entry *next;

	for (; e != NULL; e = next) {
		next = e->next;
		SSL_SESSION_free(e->sess);
		free(e);
	}
}

void
mt_tls_cache_destroy(struct mt_tls_cache *c)
{
	entries_free(c->head);
	c->head = c->tail = NULL;
	c->n = 0;
	pthread_mutex_destroy(&c->lock);
}

static void
unlink_entry(struct mt_tls_cache *c, struct mt_tls_cache_entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
	c->n--;
}

/*
 * Move expired entries, and the oldest beyond the limit, to a list the
 * caller frees after unlocking. Lock held.
 */
static struct mt_tls_cache_entry *
trim(struct mt_tls_cache *c, uint64_t now_ms)
{
	struct mt_tls_cache_entry *gone = NULL, *e;

	while ((e = c->head) != NULL &&
	    (e->expires_ms <= now_ms || (c->max != 0 && c->n > c->max))) {
		unlink_entry(c, e);
		e->next = gone;
		gone = e;
	}
	return gone;
}

int
mt_tls_cache_put(struct mt_tls_cache *c, const char *key,
    const SSL_SESSION *sess, uint64_t now_ms)
{
	struct mt_tls_cache_entry *e, *gone;
	size_t len = strlen(key);

	if (c->timeout_ms == 0 || len >= MT_TLS_KEY_MAX ||
	    !SSL_SESSION_is_resumable(sess))
		return 0;
	if ((e = malloc(sizeof(*e) + len + 1)) == NULL)
		return 0;
	if ((e->sess = SSL_SESSION_dup(sess)) == NULL) {
		free(e);
		return 0;
	}
	memcpy(e->key, key, len + 1);
	e->hash = key_hash(key);
	e->once = SSL_SESSION_get_protocol_version(sess) >= TLS1_3_VERSION;
	e->expires_ms = now_ms + c->timeout_ms < now_ms ? UINT64_MAX :
	    now_ms + c->timeout_ms;
	e->next = NULL;

	pthread_mutex_lock(&c->lock);
	e->prev = c->tail;
	if (c->tail != NULL)
		c->tail->next = e;
	else
		c->head = e;
	c->tail = e;
	c->n++;
	gone = trim(c, now_ms);
	pthread_mutex_unlock(&c->lock);

	entries_free(gone);
	return 1;
}

SSL_SESSION *
mt_tls_cache_get(struct mt_tls_cache *c, const char *key, uint64_t now_ms)
{
	struct mt_tls_cache_entry *e, *gone, *taken = NULL;
	SSL_SESSION *sess = NULL, *copy;
	uint32_t hash = key_hash(key);

	pthread_mutex_lock(&c->lock);
	gone = trim(c, now_ms);
	/* Newest first: the freshest session for this target wins. */
	for (e = c->tail; e != NULL; e = e->prev) {
		if (e->hash != hash || strcmp(e->key, key) != 0)
			continue;
		sess = e->sess;
		if (e->once) {
			unlink_entry(c, e);
			taken = e;
		} else if (!SSL_SESSION_up_ref(sess)) {
			sess = NULL;
		}
		break;
	}
	pthread_mutex_unlock(&c->lock);

	entries_free(gone);
	if (taken != NULL) {
		/* The entry's copy passes to the caller. */
		free(taken);
		return sess;
	}
	if (sess == NULL)
		return NULL;
	/* A reusable session stays ours; the caller gets its own copy. */
	copy = SSL_SESSION_dup(sess);
	SSL_SESSION_free(sess);
	return copy;
}

size_t
mt_tls_cache_count(struct mt_tls_cache *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = c->n;
	pthread_mutex_unlock(&c->lock);
	return n;
}

int
mt_tls_new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct mt_tls_ctx *ctx = mt_tls_ctx_of(ssl);
	struct mt_tls_conn *conn = mt_tls_conn_of(ssl);

	if (ctx != NULL && conn != NULL)
		mt_tls_cache_put(&ctx->cache, conn->key, sess,
		    mt_tls_now_ms());
	/* 0: OpenSSL keeps its reference; the cache stored a copy. */
	return 0;
}

void
mt_tls_info_cb(const SSL *ssl, int where, int ret)
{
	struct mt_tls_ctx *ctx;
	struct mt_tls_conn *conn;

	if ((where & SSL_CB_HANDSHAKE_DONE) == 0 ||
	    (ctx = mt_tls_ctx_of(ssl)) == NULL ||
	    (conn = mt_tls_conn_of(ssl)) == NULL)
		return;
	/* TLS 1.3 tickets may signal "done" again: count a connection once. */
	if (conn->counted)
		return;
	conn->counted = 1;
	if (SSL_session_reused(ssl))
		atomic_fetch_add(&ctx->resumed, 1);
	else
		atomic_fetch_add(&ctx->full, 1);
}

void
mt_tls_ctx_stats(struct mt_tls_ctx *ctx, struct mt_tls_stats *st)
{
	st->full = atomic_load(&ctx->full);
	st->resumed = atomic_load(&ctx->resumed);
	st->cached = mt_tls_cache_count(&ctx->cache);
}
