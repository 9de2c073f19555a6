/*
 * ocsp: revocation checks of a verified chain over OCSP (RFC 6960).
 *
 * One item per certificate (leaf and intermediates; the trust anchor is
 * trusted as configured). Each item asks its responders one after the
 * other until one gives a clear answer: a signed, current response about
 * exactly this certificate, verified against the same trust store as the
 * handshake. All items ask at once on libevent's HTTP client, under one
 * TIMEOUTocsp. The outcome is the worst item: revoked, else unclear, else
 * good. Libevent frees a request after its callback; connections are freed
 * only from our own events, never inside an HTTP callback. Clear answers
 * go to the service's cache, keyed by the SHA-256 of the certificate ID.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/http.h>
#include <openssl/ocsp.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "mailtunnel/ocsp.h"
#include "mailtunnel/util.h"

#define OCSP_MAX_CERTS 8
#define OCSP_MAX_URLS 4
#define OCSP_MAX_RESPONSE (64 * 1024)
/* Clock skew allowed on thisUpdate/nextUpdate, in seconds. */
#define OCSP_LEEWAY 300
/* Answers remembered per service, and for how long at most. */
#define OCSP_CACHE_MAX 256
#define OCSP_CACHE_SECS 3600

enum item_state {
	ITEM_ASKING,
	ITEM_NOTHING,		/* no responder to ask */
	ITEM_GOOD,
	ITEM_REVOKED,
	ITEM_UNCLEAR,
};

struct item {
	struct mt_ocsp *o;
	X509 *cert, *issuer;		/* in o->chain */
	OCSP_CERTID *id;
	OCSP_REQUEST *req;
	unsigned char *der;
	int derlen;
	char *urls[OCSP_MAX_URLS];
	size_t nurls, cur;
	struct evhttp_connection *conns[OCSP_MAX_URLS];
	struct evhttp_request *pending;	/* freed by libevent */
	enum item_state state;
	time_t until;			/* a clear answer holds till then */
	unsigned char key[SHA256_DIGEST_LENGTH];	/* of the cert ID */
	char subject[256];
	char why[512];
};

struct cache_entry {
	unsigned char key[SHA256_DIGEST_LENGTH];
	enum item_state state;
	time_t until;
	char why[512];
};

struct mt_ocsp_cache {
	pthread_mutex_t lock;
	struct cache_entry v[OCSP_CACHE_MAX];
	size_t n;
};

struct mt_ocsp {
	struct event_base *base;
	struct evdns_base *dns;
	struct mt_log_ctx log;
	int nonce;
	unsigned long flags;		/* OCSPflag */
	unsigned long long timeout;
	struct mt_ocsp_cache *cache;
	STACK_OF(X509) *chain;
	X509_STORE *store;
	struct item items[OCSP_MAX_CERTS];
	size_t n, asking;
	struct event *timer, *fin;
	mt_ocsp_done_fn *done;
	void *arg;
};

static void ask(struct item *it);

struct mt_ocsp_cache *
mt_ocsp_cache_new(void)
{
	struct mt_ocsp_cache *c = calloc(1, sizeof(*c));

	if (c != NULL && pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c);
		c = NULL;
	}
	return c;
}

void
mt_ocsp_cache_free(struct mt_ocsp_cache *c)
{
	if (c == NULL)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* A remembered clear answer for it (state and why set), or 0. */
static int
cache_get(struct mt_ocsp_cache *c, struct item *it)
{
	time_t now = time(NULL);
	size_t i;
	int hit = 0;

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < c->n; i++) {
		if (memcmp(c->v[i].key, it->key, sizeof(it->key)) != 0)
			continue;
		if (c->v[i].until > now) {
			it->state = c->v[i].state;
			snprintf(it->why, sizeof(it->why), "%s (remembered)",
			    c->v[i].why);
			hit = 1;
		} else {
			c->v[i] = c->v[--c->n];
		}
		break;
	}
	pthread_mutex_unlock(&c->lock);
	return hit;
}

static void
cache_put(struct mt_ocsp_cache *c, const struct item *it)
{
	struct cache_entry *e = NULL;
	time_t now = time(NULL);
	size_t i;

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < c->n && e == NULL; i++)
		if (memcmp(c->v[i].key, it->key, sizeof(it->key)) == 0 ||
		    c->v[i].until <= now)
			e = &c->v[i];
	if (e == NULL)
		e = c->n < OCSP_CACHE_MAX ? &c->v[c->n++] :
		    &c->v[(size_t)now % OCSP_CACHE_MAX];
	memcpy(e->key, it->key, sizeof(e->key));
	e->state = it->state;
	e->until = it->until;
	snprintf(e->why, sizeof(e->why), "%s", it->why);
	pthread_mutex_unlock(&c->lock);
}

static void
settle(struct item *it, enum item_state state)
{
	static const char *const level_words[] = {
		[ITEM_GOOD] = "good", [ITEM_REVOKED] = "REVOKED",
		[ITEM_UNCLEAR] = "no clear answer",
	};
	struct mt_ocsp *o = it->o;

	it->state = state;
	if (o->cache != NULL && state != ITEM_UNCLEAR && it->until > time(NULL))
		cache_put(o->cache, it);
	mt_log_c(&o->log, state == ITEM_GOOD ? MT_LOG_INFO : MT_LOG_WARNING,
	    "OCSP: %s: %s: %s", it->subject, level_words[state], it->why);
	if (--o->asking == 0)
		event_active(o->fin, EV_TIMEOUT, 0);
}

static void
fmt_time(const ASN1_GENERALIZEDTIME *t, char *buf, size_t n)
{
	struct tm tm;

	if (t == NULL || !ASN1_TIME_to_tm(t, &tm) ||
	    strftime(buf, n, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, n, "an unknown time");
}

/* Judge one response body; it->why says what was found. */
static enum item_state
judge(struct item *it, const unsigned char *p, long len, const char *url)
{
	ASN1_GENERALIZEDTIME *revoked, *this_update, *next_update;
	OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, len);
	OCSP_BASICRESP *bs = NULL;
	enum item_state r = ITEM_UNCLEAR;
	int st, status, reason, days, secs;
	char when[64], err[160];

	if (resp == NULL) {
		snprintf(it->why, sizeof(it->why), "%s sent something that is "
		    "not an OCSP response", url);
		goto out;
	}
	if ((st = OCSP_response_status(resp)) !=
	    OCSP_RESPONSE_STATUS_SUCCESSFUL) {
		snprintf(it->why, sizeof(it->why), "%s refused the request: %s",
		    url, OCSP_response_status_str(st));
		goto out;
	}
	if ((bs = OCSP_response_get1_basic(resp)) == NULL) {
		snprintf(it->why, sizeof(it->why), "%s sent a response of an "
		    "unknown type", url);
		goto out;
	}
	if (it->o->nonce && OCSP_check_nonce(it->req, bs) != 1) {
		snprintf(it->why, sizeof(it->why), "%s did not send our nonce "
		    "back (OCSPnonce = yes)", url);
		goto out;
	}
	if (OCSP_basic_verify(bs, it->o->chain, it->o->store,
	    it->o->flags) <= 0) {
		ERR_error_string_n(ERR_peek_last_error(), err, sizeof(err));
		snprintf(it->why, sizeof(it->why), "the response of %s does not "
		    "verify: %s", url, err);
		goto out;
	}
	if (!OCSP_resp_find_status(bs, it->id, &status, &reason, &revoked,
	    &this_update, &next_update)) {
		snprintf(it->why, sizeof(it->why), "the response of %s says "
		    "nothing about this certificate", url);
		goto out;
	}
	if (!OCSP_check_validity(this_update, next_update, OCSP_LEEWAY, -1)) {
		snprintf(it->why, sizeof(it->why), "the response of %s is out "
		    "of date", url);
		goto out;
	}
	/* Remembered until nextUpdate (an hour at most, 5 minutes without). */
	it->until = time(NULL) + (next_update == NULL ? 300 : OCSP_CACHE_SECS);
	if (next_update != NULL && ASN1_TIME_diff(&days, &secs, NULL,
	    next_update) && (long long)days * 86400 + secs < OCSP_CACHE_SECS)
		it->until = time(NULL) + (long long)days * 86400 + secs;
	switch (status) {
	case V_OCSP_CERTSTATUS_GOOD:
		snprintf(it->why, sizeof(it->why), "says %s", url);
		r = ITEM_GOOD;
		break;
	case V_OCSP_CERTSTATUS_REVOKED:
		fmt_time(revoked, when, sizeof(when));
		snprintf(it->why, sizeof(it->why), "revoked on %s (%s), says %s",
		    when, reason >= 0 ? OCSP_crl_reason_str(reason) :
		    "no reason given", url);
		r = ITEM_REVOKED;
		break;
	default:
		snprintf(it->why, sizeof(it->why), "%s does not know the "
		    "certificate", url);
		break;
	}
out:
	ERR_clear_error();
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	return r;
}

static void
http_done(struct evhttp_request *req, void *arg)
{
	struct item *it = arg;
	const char *url = it->urls[it->cur];
	struct evbuffer *body;
	enum item_state r;
	int code = req != NULL ? evhttp_request_get_response_code(req) : 0;

	it->pending = NULL;
	if (code == 0) {
		snprintf(it->why, sizeof(it->why), "no answer from %s", url);
	} else if (code != 200) {
		snprintf(it->why, sizeof(it->why), "%s answered HTTP %d", url,
		    code);
	} else {
		body = evhttp_request_get_input_buffer(req);
		r = judge(it, evbuffer_pullup(body, -1),
		    (long)evbuffer_get_length(body), url);
		if (r != ITEM_UNCLEAR) {
			settle(it, r);
			return;
		}
	}
	it->cur++;
	ask(it);
}

/* Send the request to it->urls[it->cur]; -1 with it->why set. */
static int
ask_url(struct item *it)
{
	struct mt_ocsp *o = it->o;
	const char *url = it->urls[it->cur];
	char *host = NULL, *port = NULL, *path = NULL, *query = NULL;
	char hosthdr[300], uri[2048], len[24];
	struct evhttp_connection *conn;
	struct evhttp_request *req;
	struct evkeyvalq *h;
	int tls = 0, portnum = 0, rc = -1;

	if (!OSSL_HTTP_parse_url(url, &tls, NULL, &host, &port, &portnum,
	    &path, &query, NULL) || tls) {
		snprintf(it->why, sizeof(it->why), "cannot ask %s: %s", url,
		    tls ? "only http:// responders are supported" :
		    "not a URL");
		goto out;
	}
	if (portnum == 80)
		snprintf(hosthdr, sizeof(hosthdr), "%s", host);
	else
		snprintf(hosthdr, sizeof(hosthdr), "%s:%s", host, port);
	snprintf(uri, sizeof(uri), "%s%s%s", path, query != NULL ? "?" : "",
	    query != NULL ? query : "");
	snprintf(len, sizeof(len), "%d", it->derlen);
	if ((conn = evhttp_connection_base_new(o->base, o->dns, host,
	    (unsigned short)portnum)) == NULL) {
		snprintf(it->why, sizeof(it->why), "cannot ask %s: out of "
		    "memory", url);
		goto out;
	}
	it->conns[it->cur] = conn;
	evhttp_connection_set_timeout(conn, (int)o->timeout);
	evhttp_connection_set_retries(conn, 0);
	evhttp_connection_set_max_body_size(conn, OCSP_MAX_RESPONSE);
	if ((req = evhttp_request_new(http_done, it)) == NULL) {
		snprintf(it->why, sizeof(it->why), "cannot ask %s: out of "
		    "memory", url);
		goto out;
	}
	h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", hosthdr);
	evhttp_add_header(h, "Content-Type", "application/ocsp-request");
	evhttp_add_header(h, "Accept", "application/ocsp-response");
	evhttp_add_header(h, "Content-Length", len);
	evhttp_add_header(h, "Connection", "close");
	evbuffer_add(evhttp_request_get_output_buffer(req), it->der,
	    (size_t)it->derlen);
	if (evhttp_make_request(conn, req, EVHTTP_REQ_POST, uri) == -1) {
		snprintf(it->why, sizeof(it->why), "cannot ask %s", url);
		goto out;
	}
	it->pending = req;
	mt_log_c(&o->log, MT_LOG_DEBUG, "OCSP: %s: asking %s", it->subject,
	    url);
	rc = 0;
out:
	ERR_clear_error();
	OPENSSL_free(host);
	OPENSSL_free(port);
	OPENSSL_free(path);
	OPENSSL_free(query);
	return rc;
}

/* Ask the next responder; with none left, the item is unclear. */
static void
ask(struct item *it)
{
	for (; it->cur < it->nurls; it->cur++)
		if (ask_url(it) == 0)
			return;
	settle(it, ITEM_UNCLEAR);
}

static int
add_url(struct item *it, const char *url)
{
	size_t i;

	for (i = 0; i < it->nurls; i++)
		if (strcmp(it->urls[i], url) == 0)
			return 0;
	if (it->nurls == OCSP_MAX_URLS)
		return 0;
	if ((it->urls[it->nurls] = strdup(url)) == NULL)
		return -1;
	it->nurls++;
	return 0;
}

/* it->key: the SHA-256 of the DER certificate ID; 0 on failure. */
static int
cert_id_key(struct item *it)
{
	unsigned char *der = NULL;
	int len = i2d_OCSP_CERTID(it->id, &der);

	if (len <= 0)
		return 0;
	SHA256(der, (size_t)len, it->key);
	OPENSSL_free(der);
	return 1;
}

/* The request for chain[i] (issued by chain[i + 1]); -1: no memory. */
static int
item_init(struct mt_ocsp *o, size_t i, const struct mt_ocsp_conf *conf)
{
	struct item *it = &o->items[i];
	STACK_OF(OPENSSL_STRING) *aia = NULL;
	int k, rc = -1;

	it->o = o;
	it->cert = sk_X509_value(o->chain, (int)i);
	it->issuer = sk_X509_value(o->chain, (int)i + 1);
	X509_NAME_oneline(X509_get_subject_name(it->cert), it->subject,
	    sizeof(it->subject));
	if (conf->url != NULL && add_url(it, conf->url) == -1)
		goto out;
	if (conf->aia && (aia = X509_get1_ocsp(it->cert)) != NULL)
		for (k = 0; k < sk_OPENSSL_STRING_num(aia); k++)
			if (add_url(it, sk_OPENSSL_STRING_value(aia, k)) == -1)
				goto out;
	if (it->nurls == 0) {
		it->state = ITEM_NOTHING;
		mt_log_c(&o->log, MT_LOG_DEBUG, "OCSP: %s: names no responder; "
		    "nothing to ask", it->subject);
		rc = 0;
		goto out;
	}
	if ((it->id = OCSP_cert_to_id(NULL, it->cert, it->issuer)) == NULL ||
	    (it->req = OCSP_REQUEST_new()) == NULL ||
	    OCSP_request_add0_id(it->req, it->id) == NULL)
		goto out;
	/* The request owns the id now; keep our own for the answer. */
	if ((it->id = OCSP_CERTID_dup(it->id)) == NULL ||
	    (o->nonce && !OCSP_request_add1_nonce(it->req, NULL, -1)) ||
	    (it->derlen = i2d_OCSP_REQUEST(it->req, &it->der)) <= 0 ||
	    !cert_id_key(it))
		goto out;
	if (o->cache != NULL && cache_get(o->cache, it)) {
		mt_log_c(&o->log, MT_LOG_DEBUG, "OCSP: %s: %s", it->subject,
		    it->why);
		rc = 0;
		goto out;
	}
	it->state = ITEM_ASKING;
	o->asking++;
	rc = 0;
out:
	X509_email_free(aia);
	ERR_clear_error();
	return rc;
}

static void
ocsp_free(struct mt_ocsp *o)
{
	struct item *it;
	size_t i, k;

	for (i = 0; i < o->n; i++) {
		it = &o->items[i];
		if (it->pending != NULL)
			evhttp_cancel_request(it->pending);
		for (k = 0; k < it->nurls; k++) {
			if (it->conns[k] != NULL)
				evhttp_connection_free(it->conns[k]);
			free(it->urls[k]);
		}
		OCSP_CERTID_free(it->id);
		OCSP_REQUEST_free(it->req);
		OPENSSL_free(it->der);
	}
	if (o->timer != NULL)
		event_free(o->timer);
	if (o->fin != NULL)
		event_free(o->fin);
	sk_X509_pop_free(o->chain, X509_free);
	X509_STORE_free(o->store);
	free(o);
}

static void
finished(evutil_socket_t fd, short what, void *arg)
{
	struct mt_ocsp *o = arg;
	enum mt_ocsp_result result = MT_OCSP_GOOD;
	mt_ocsp_done_fn *done = o->done;
	void *done_arg = o->arg;
	char why[600];
	size_t i, asked = 0;
	struct item *it;

	snprintf(why, sizeof(why), "no certificate of the chain names an "
	    "OCSP responder");
	for (i = 0; i < o->n; i++) {
		it = &o->items[i];
		if (it->state == ITEM_NOTHING)
			continue;
		asked++;
		if (it->state == ITEM_REVOKED || (it->state == ITEM_UNCLEAR &&
		    result == MT_OCSP_GOOD)) {
			result = it->state == ITEM_REVOKED ? MT_OCSP_REVOKED :
			    MT_OCSP_UNCLEAR;
			snprintf(why, sizeof(why), "%s: %s", it->subject,
			    it->why);
		}
	}
	if (o->chain == NULL) {
		result = MT_OCSP_UNCLEAR;
		snprintf(why, sizeof(why), "no verified chain to check");
	} else if (result == MT_OCSP_GOOD && asked > 0) {
		snprintf(why, sizeof(why), "%zu certificate%s good", asked,
		    asked == 1 ? "" : "s");
	}
	ocsp_free(o);
	done(done_arg, result, why);
}

static void
timed_out(evutil_socket_t fd, short what, void *arg)
{
	struct mt_ocsp *o = arg;
	struct item *it;
	size_t i;

	for (i = 0; i < o->n; i++) {
		it = &o->items[i];
		if (it->state != ITEM_ASKING)
			continue;
		if (it->pending != NULL) {
			evhttp_cancel_request(it->pending);
			it->pending = NULL;
		}
		snprintf(it->why, sizeof(it->why), "no answer from %s within "
		    "%llus (TIMEOUTocsp)", it->urls[it->cur], o->timeout);
		settle(it, ITEM_UNCLEAR);
	}
}

struct mt_ocsp *
mt_ocsp_start(struct event_base *base, struct evdns_base *dns, SSL *ssl,
    const struct mt_ocsp_conf *conf, struct mt_ocsp_cache *cache,
    const struct mt_log_ctx *log, mt_ocsp_done_fn *done, void *arg)
{
	STACK_OF(X509) *verified = SSL_get0_verified_chain(ssl);
	struct timeval tv = { (time_t)conf->timeout, 0 };
	struct mt_ocsp *o;
	size_t i = 0;

	if ((o = calloc(1, sizeof(*o))) == NULL)
		return NULL;
	o->base = base;
	o->dns = dns;
	o->log = *log;
	o->nonce = conf->nonce;
	o->flags = (unsigned long)conf->flags;
	o->timeout = conf->timeout;
	o->cache = cache;
	o->done = done;
	o->arg = arg;
	o->store = SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl));
	if (!X509_STORE_up_ref(o->store)) {
		o->store = NULL;
		goto err;
	}
	if ((o->fin = event_new(base, -1, 0, finished, o)) == NULL ||
	    (o->timer = evtimer_new(base, timed_out, o)) == NULL)
		goto err;
	if (verified != NULL) {
		if ((o->chain = X509_chain_up_ref(verified)) == NULL)
			goto err;
		/* Every certificate but the trust anchor, with its issuer. */
		o->n = (size_t)sk_X509_num(o->chain) - 1;
		if (o->n > OCSP_MAX_CERTS)
			o->n = OCSP_MAX_CERTS;
	}
	for (i = 0; i < o->n; i++)
		if (item_init(o, i, conf) == -1)
			goto err;
	for (i = 0; i < o->n; i++)
		if (o->items[i].state == ITEM_ASKING)
			ask(&o->items[i]);
	if (o->asking > 0)
		evtimer_add(o->timer, &tv);
	else
		event_active(o->fin, EV_TIMEOUT, 0);
	return o;
err:
	o->n = i < o->n ? i + 1 : o->n;
	ocsp_free(o);
	return NULL;
}

void
mt_ocsp_cancel(struct mt_ocsp *o)
{
	if (o != NULL)
		ocsp_free(o);
}

int
mt_ocsp_verdict(const struct mt_ocsp_conf *conf, const struct mt_log_ctx *log,
    const char *server, const char *addr, enum mt_ocsp_result result,
    const char *why, char *err, size_t errsz)
{
	if (result == MT_OCSP_GOOD ||
	    (result == MT_OCSP_UNCLEAR && !conf->require)) {
		mt_log_c(log, result == MT_OCSP_GOOD ? MT_LOG_INFO :
		    MT_LOG_WARNING, "OCSP check of %s [%s]: %s%s", server, addr,
		    why, result == MT_OCSP_GOOD ? "" :
		    "; going on (OCSPrequire = no)");
		return 1;
	}
	snprintf(err, errsz, "TLS with %s [%s] refused: %s: %s", server, addr,
	    result == MT_OCSP_REVOKED ? "certificate revoked" :
	    "no clear OCSP answer (OCSPrequire = yes)", why);
	return 0;
}
