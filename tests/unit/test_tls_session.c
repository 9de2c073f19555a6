/*
 * test_tls_session: session resumption through real handshakes (TLS 1.2
 * and 1.3, timeout, size, NO_TICKET, sessionResume = no), renegotiation
 * allowed and refused, the cache alone with a clock we
 * drive, several threads on one cache, and the failure phrase through a
 * real libevent bufferevent_openssl.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "mailtunnel/tls.h"
#include "tls_int.h"
#include "tls_tests.h"

static SSL_CTX *
server(int max_version, int num_tickets, int no_cache)
{
	X509 *chain[1] = { P->inter.x };
	struct tp_server_opts o = { .leaf = &P->good, .chain = chain,
	    .nchain = 1, .max_version = max_version,
	    .num_tickets = num_tickets, .no_cache = no_cache };
	SSL_CTX *sc = tp_server_ctx(&o);

	assert_non_null(sc);
	return sc;
}

/* A connection to host:995 through ctx; returns whether it resumed. */
static int
run(struct mt_tls_ctx *ctx, SSL_CTX *sc, const char *host)
{
	struct tp_result r;

	assert_true(tp_handshake(mt_tls_ssl_new(ctx, host, "995"), sc, NULL,
	    &r));
	return r.resumed;
}

static void
check_stats(struct mt_tls_ctx *ctx, unsigned long long full,
    unsigned long long resumed)
{
	struct mt_tls_stats st;

	mt_tls_ctx_stats(ctx, &st);
	assert_int_equal(st.full, full);
	assert_int_equal(st.resumed, resumed);
}

static void
test_resume_tls13(void **state)
{
	struct mt_tls_ctx *ctx = tt_ctx(tt_svc());
	SSL_CTX *sc = server(0, 1, 0);
	struct mt_tls_stats st;
	struct tp_result r;
	SSL *a, *b;

	(void)state;
	assert_false(run(ctx, sc, "mail.example.net"));
	mt_tls_ctx_stats(ctx, &st);
	assert_int_equal(st.cached, 1);
	assert_true(run(ctx, sc, "mail.example.net"));
	check_stats(ctx, 1, 1);
	/* A ticket is used once: of two connections made now, one resumes. */
	a = mt_tls_ssl_new(ctx, "mail.example.net", "995");
	b = mt_tls_ssl_new(ctx, "mail.example.net", "995");
	mt_tls_ctx_stats(ctx, &st);
	assert_int_equal(st.cached, 0);
	assert_true(tp_handshake(a, sc, NULL, &r));
	assert_true(r.resumed);
	assert_non_null(strstr(r.describe, "TLSv1.3 "));
	assert_non_null(strstr(r.describe, ", resumed"));
	assert_true(tp_handshake(b, sc, NULL, &r));
	assert_false(r.resumed);
	check_stats(ctx, 2, 2);
	/* Another host is another target. */
	assert_false(run(ctx, sc, "pop.example.net"));
	SSL_CTX_free(sc);
	mt_tls_ctx_free(ctx);
}

static void
test_resume_two_tickets(void **state)
{
	struct mt_tls_ctx *ctx = tt_ctx(tt_svc());
	SSL_CTX *sc = server(0, 2, 0);
	struct mt_tls_stats st;

	(void)state;
	assert_false(run(ctx, sc, "mail.example.net"));
	mt_tls_ctx_stats(ctx, &st);
	assert_int_equal(st.cached, 2);
	assert_true(run(ctx, sc, "mail.example.net"));
	SSL_CTX_free(sc);
	mt_tls_ctx_free(ctx);
}

static void
test_resume_tls12(void **state)
{
	struct mt_service_conf *svc = tt_svc();
	struct mt_tls_ctx *ctx = tt_ctx(svc);
	SSL_CTX *sc = server(TLS1_2_VERSION, -1, 0);
	struct tp_result r;
	SSL *a, *b;

	(void)state;
	assert_false(run(ctx, sc, "mail.example.net"));
	/* A TLS 1.2 session may serve several connections at once. */
	a = mt_tls_ssl_new(ctx, "mail.example.net", "995");
	b = mt_tls_ssl_new(ctx, "mail.example.net", "995");
	assert_true(tp_handshake(a, sc, NULL, &r));
	assert_true(r.resumed);
	assert_non_null(strstr(r.describe, "TLSv1.2 "));
	assert_true(tp_handshake(b, sc, NULL, &r));
	assert_true(r.resumed);
	/* Still there, though the clients went without close_notify. */
	assert_true(run(ctx, sc, "mail.example.net"));
	check_stats(ctx, 1, 3);
	mt_tls_ctx_free(ctx);
	/* With options = NO_TICKET the server's session ID does the job. */
	svc->tls.options_on = SSL_OP_NO_TICKET;
	ctx = tt_ctx(svc);
	assert_false(run(ctx, sc, "mail.example.net"));
	assert_true(run(ctx, sc, "mail.example.net"));
	mt_tls_ctx_free(ctx);
	SSL_CTX_free(sc);
}

static void
test_no_resumption_offered(void **state)
{
	struct mt_service_conf *svc = tt_svc();
	struct mt_tls_ctx *ctx;
	SSL_CTX *sc = server(0, -1, 1);
	struct mt_tls_stats st;

	(void)state;
	/* A server that keeps no sessions: nothing to cache, no harm. */
	ctx = tt_ctx(svc);
	assert_false(run(ctx, sc, "mail.example.net"));
	assert_false(run(ctx, sc, "mail.example.net"));
	mt_tls_ctx_stats(ctx, &st);
	assert_int_equal(st.cached, 0);
	mt_tls_ctx_free(ctx);
	SSL_CTX_free(sc);
	/* sessionCacheTimeout = 0: no resumption at all. */
	svc->tls.session_cache_timeout = 0;
	ctx = tt_ctx(svc);
	sc = server(0, -1, 0);
	assert_false(run(ctx, sc, "mail.example.net"));
	assert_false(run(ctx, sc, "mail.example.net"));
	check_stats(ctx, 2, 0);
	mt_tls_ctx_free(ctx);
	SSL_CTX_free(sc);
}

/* sessionResume = no: every connection a full handshake, nothing kept. */
static void
test_resume_off(void **state)
{
	struct mt_service_conf *svc = tt_svc();
	struct mt_tls_ctx *ctx;
	struct mt_tls_stats st;
	SSL_CTX *sc;
	int v;

	(void)state;
	svc->tls.no_resume = 1;
	for (v = 0; v < 2; v++) {
		ctx = tt_ctx(svc);
		sc = server(v == 0 ? 0 : TLS1_2_VERSION, 2, 0);
		assert_false(run(ctx, sc, "mail.example.net"));
		assert_false(run(ctx, sc, "mail.example.net"));
		mt_tls_ctx_stats(ctx, &st);
		assert_int_equal(st.cached, 0);
		check_stats(ctx, 2, 0);
		mt_tls_ctx_free(ctx);
		SSL_CTX_free(sc);
	}
}

/*
 * A TLS 1.2 server asks to renegotiate after the handshake. Returns
 * whether the renegotiation completed.
 */
static int
renegotiated(struct mt_tls_ctx *ctx)
{
	SSL_CTX *sc = server(TLS1_2_VERSION, -1, 0);
	SSL *c = mt_tls_ssl_new(ctx, "mail.example.net", "995");
	SSL *s = SSL_new(sc);
	BIO *cb, *sb;
	char buf[16];
	int i, rc, done, failed = 0;

	assert_non_null(c);
	assert_non_null(s);
	assert_true(BIO_new_bio_pair(&cb, 0, &sb, 0));
	SSL_set_bio(c, cb, cb);
	SSL_set_bio(s, sb, sb);
	SSL_set_accept_state(s);
	for (i = 0; i < 50 && !(SSL_is_init_finished(c) &&
	    SSL_is_init_finished(s)); i++) {
		SSL_do_handshake(c);
		SSL_do_handshake(s);
	}
	assert_true(SSL_is_init_finished(c) && SSL_is_init_finished(s));
	assert_int_equal(SSL_renegotiate(s), 1);
	SSL_do_handshake(s);			/* sends HelloRequest */
	for (i = 0; i < 50 && !failed && SSL_renegotiate_pending(s); i++) {
		if ((rc = SSL_read(c, buf, sizeof(buf))) <= 0 &&
		    SSL_get_error(c, rc) == SSL_ERROR_SSL)
			failed = 1;
		if ((rc = SSL_read(s, buf, sizeof(buf))) <= 0 &&
		    SSL_get_error(s, rc) == SSL_ERROR_SSL)
			failed = 1;
	}
	done = !failed && !SSL_renegotiate_pending(s) &&
	    SSL_num_renegotiations(c) > 0;
	ERR_clear_error();
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(sc);
	return done;
}

static void
test_renegotiation(void **state)
{
	struct mt_service_conf *svc = tt_svc();
	struct mt_tls_ctx *ctx;

	(void)state;
	ctx = tt_ctx(svc);
	assert_true(renegotiated(ctx));
	mt_tls_ctx_free(ctx);
	/* renegotiation = no: the server's request ends the connection. */
	svc->tls.no_renegotiation = 1;
	ctx = tt_ctx(svc);
	assert_false(renegotiated(ctx));
	mt_tls_ctx_free(ctx);
}

static void
test_resume_timeout(void **state)
{
	struct mt_service_conf *svc = tt_svc();
	struct timespec ts = { 1, 100 * 1000 * 1000 };
	struct mt_tls_ctx *ctx;
	SSL_CTX *sc = server(TLS1_2_VERSION, -1, 0);

	(void)state;
	svc->tls.session_cache_timeout = 1;
	ctx = tt_ctx(svc);
	assert_false(run(ctx, sc, "mail.example.net"));
	assert_true(run(ctx, sc, "mail.example.net"));
	nanosleep(&ts, NULL);
	assert_false(run(ctx, sc, "mail.example.net"));
	mt_tls_ctx_free(ctx);
	SSL_CTX_free(sc);
}

static void
test_resume_cache_size(void **state)
{
	struct mt_service_conf *svc = tt_svc();
	struct mt_tls_ctx *ctx;
	SSL_CTX *sc = server(TLS1_2_VERSION, -1, 0);
	struct mt_tls_stats st;

	(void)state;
	svc->tls.session_cache_size = 1;
	ctx = tt_ctx(svc);
	assert_false(run(ctx, sc, "mail.example.net"));
	assert_false(run(ctx, sc, "pop.example.net"));
	mt_tls_ctx_stats(ctx, &st);
	assert_int_equal(st.cached, 1);
	assert_true(run(ctx, sc, "pop.example.net"));
	assert_false(run(ctx, sc, "mail.example.net"));
	mt_tls_ctx_free(ctx);
	SSL_CTX_free(sc);
}

/* A resumable session with an ID we can recognise in copies. */
static SSL_SESSION *
fake_session(unsigned char id, int version)
{
	SSL_SESSION *s = SSL_SESSION_new();

	assert_non_null(s);
	assert_true(SSL_SESSION_set1_id(s, &id, 1));
	assert_true(SSL_SESSION_set_protocol_version(s, version));
	return s;
}

static unsigned char
session_id(SSL_SESSION *s)
{
	unsigned int len;
	const unsigned char *id = SSL_SESSION_get_id(s, &len);
	unsigned char v = len == 1 ? id[0] : 0;

	SSL_SESSION_free(s);
	return v;
}

static void
put(struct mt_tls_cache *c, const char *key, unsigned char id, int version,
    uint64_t now)
{
	SSL_SESSION *s = fake_session(id, version);

	assert_int_equal(mt_tls_cache_put(c, key, s, now), 1);
	SSL_SESSION_free(s);
}

static void
test_cache_alone(void **state)
{
	struct mt_tls_cache c;
	char longkey[MT_TLS_KEY_MAX + 1];
	SSL_SESSION *s;

	(void)state;
	assert_int_equal(mt_tls_cache_init(&c, 3, 10), 0);
	put(&c, "a 1", 1, TLS1_2_VERSION, 1000);
	put(&c, "a 1", 2, TLS1_2_VERSION, 2000);
	put(&c, "b 1", 3, TLS1_3_VERSION, 2000);
	/* The freshest for the key, and a TLS 1.2 one stays. */
	assert_int_equal(session_id(mt_tls_cache_get(&c, "a 1", 3000)), 2);
	assert_int_equal(session_id(mt_tls_cache_get(&c, "a 1", 3000)), 2);
	assert_null(mt_tls_cache_get(&c, "a 2", 3000));
	/* A TLS 1.3 one goes. */
	assert_int_equal(session_id(mt_tls_cache_get(&c, "b 1", 3000)), 3);
	assert_null(mt_tls_cache_get(&c, "b 1", 3000));
	/* Full: the oldest goes first. */
	put(&c, "c 1", 4, TLS1_2_VERSION, 3000);
	put(&c, "d 1", 5, TLS1_2_VERSION, 3000);
	assert_int_equal(mt_tls_cache_count(&c), 3);
	assert_int_equal(session_id(mt_tls_cache_get(&c, "a 1", 3000)), 2);
	assert_int_equal(session_id(mt_tls_cache_get(&c, "c 1", 3000)), 4);
	/* Timeout 10 s: a 1 (2000) is gone at 12000, c 1 (3000) is not. */
	assert_null(mt_tls_cache_get(&c, "a 1", 12000));
	assert_int_equal(session_id(mt_tls_cache_get(&c, "c 1", 12999)), 4);
	assert_null(mt_tls_cache_get(&c, "c 1", 13000));
	/* Not resumable, or a key too long: not kept. */
	s = SSL_SESSION_new();
	assert_int_equal(mt_tls_cache_put(&c, "e 1", s, 13000), 0);
	SSL_SESSION_free(s);
	memset(longkey, 'x', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	s = fake_session(6, TLS1_2_VERSION);
	assert_int_equal(mt_tls_cache_put(&c, longkey, s, 13000), 0);
	SSL_SESSION_free(s);
	mt_tls_cache_destroy(&c);
}

struct hammer {
	struct mt_tls_cache *c;
	int n;
	int got;
};

static void *
hammer(void *arg)
{
	struct hammer *h = arg;
	char key[16];
	SSL_SESSION *s;
	int i;

	for (i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "h%d %d", h->n, i % 7);
		s = fake_session((unsigned char)(i % 250 + 1), i % 2 ?
		    TLS1_3_VERSION : TLS1_2_VERSION);
		mt_tls_cache_put(h->c, key, s, (uint64_t)i);
		SSL_SESSION_free(s);
		if ((s = mt_tls_cache_get(h->c, key, (uint64_t)i)) != NULL) {
			h->got++;
			SSL_SESSION_free(s);
		}
	}
	return NULL;
}

static void
test_cache_threads(void **state)
{
	struct mt_tls_cache c;
	struct hammer h[4];
	pthread_t t[4];
	int i;

	(void)state;
	assert_int_equal(mt_tls_cache_init(&c, 50, 300), 0);
	for (i = 0; i < 4; i++) {
		h[i] = (struct hammer){ &c, i, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, hammer, &h[i]),
		    0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_true(h[i].got > 1000);
	}
	assert_true(mt_tls_cache_count(&c) <= 50);
	mt_tls_cache_destroy(&c);
}

/* --- The libevent path. --------------------------------------------- */

struct bev_case {
	struct event_base *base;
	char reason[512];
	int events;
};

static void
client_event(struct bufferevent *bev, short what, void *arg)
{
	struct bev_case *bc = arg;
	int sys_errno = EVUTIL_SOCKET_ERROR();

	bc->events = what;
	if (what & BEV_EVENT_ERROR)
		mt_tls_reason_bufferevent(bev, sys_errno, bc->reason,
		    sizeof(bc->reason));
	event_base_loopexit(bc->base, NULL);
}

/* A client bufferevent against a server bufferevent (or raw bytes). */
static void
bev_run(struct mt_tls_ctx *ctx, SSL_CTX *sc, const char *raw,
    struct bev_case *bc)
{
	struct bufferevent *c, *s = NULL;
	int sv[2];

	memset(bc, 0, sizeof(*bc));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	evutil_make_socket_nonblocking(sv[0]);
	evutil_make_socket_nonblocking(sv[1]);
	assert_non_null(bc->base = event_base_new());
	c = bufferevent_openssl_socket_new(bc->base, sv[0],
	    mt_tls_ssl_new(ctx, "mail.example.net", "995"),
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(c);
	bufferevent_setcb(c, NULL, NULL, client_event, bc);
	bufferevent_enable(c, EV_READ | EV_WRITE);
	if (sc != NULL) {
		s = bufferevent_openssl_socket_new(bc->base, sv[1], SSL_new(sc),
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		assert_non_null(s);
		bufferevent_enable(s, EV_READ | EV_WRITE);
	} else {
		/* A plaintext server waits for a command; "" hangs up. */
		assert_int_equal(write(sv[1], raw, strlen(raw)),
		    (ssize_t)strlen(raw));
		if (raw[0] == '\0')
			shutdown(sv[1], SHUT_WR);
	}
	event_base_dispatch(bc->base);
	bufferevent_free(c);
	if (s != NULL)
		bufferevent_free(s);
	else
		close(sv[1]);
	event_base_free(bc->base);
	ERR_clear_error();
}

static void
test_bufferevent_reasons(void **state)
{
	struct mt_tls_ctx *ctx = tt_ctx(tt_svc());
	SSL_CTX *sc = tt_server(&P->expired, &P->inter, NULL);
	struct bev_case bc;

	(void)state;
	bev_run(ctx, sc, NULL, &bc);
	assert_true(bc.events & BEV_EVENT_ERROR);
	assert_string_equal(bc.reason, "certificate expired on 2021-01-01 "
	    "(CN=mail.example.net)");
	SSL_CTX_free(sc);
	bev_run(ctx, NULL, "+OK ready\r\n", &bc);
	assert_string_equal(bc.reason, "server sent a plaintext reply, not TLS "
	    "(wrong port or STARTTLS needed?)");
	bev_run(ctx, NULL, "", &bc);
	assert_string_equal(bc.reason, "connection closed during handshake");
	sc = tt_server(&P->good, &P->inter, NULL);
	bev_run(ctx, sc, NULL, &bc);
	assert_true(bc.events & BEV_EVENT_CONNECTED);
	SSL_CTX_free(sc);
	mt_tls_ctx_free(ctx);
}

int
tt_run_session_tests(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resume_tls13),
		cmocka_unit_test(test_resume_two_tickets),
		cmocka_unit_test(test_resume_tls12),
		cmocka_unit_test(test_no_resumption_offered),
		cmocka_unit_test(test_resume_off),
		cmocka_unit_test(test_renegotiation),
		cmocka_unit_test(test_resume_timeout),
		cmocka_unit_test(test_resume_cache_size),
		cmocka_unit_test(test_cache_alone),
		cmocka_unit_test(test_cache_threads),
		cmocka_unit_test(test_bufferevent_reasons),
	};

	return cmocka_run_group_tests_name("tls_session", tests, NULL, NULL);
}
