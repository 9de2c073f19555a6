/*
 * tls: one SSL_CTX per service, built from its options. See
 * include/mailtunnel/tls.h. Files (trust store, client key) are loaded by
 * tls_files.c, connections made by tls_conn.c, verified with
 * tls_verify.c's callback; sessions live in tls_session.c and failure
 * phrases come from tls_reason.c and tls_phrase.c.
 */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "mailtunnel/config.h"
#include "mailtunnel/log.h"
#include "mailtunnel/tls.h"
#include "mailtunnel/util.h"
#include "tls_int.h"

static pthread_once_t index_once = PTHREAD_ONCE_INIT;
static int ctx_index = -1;
static int conn_index = -1;

static void ctx_destroy(struct mt_tls_ctx *ctx);

static void
ctx_exfree(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	ctx_destroy(ptr);
}

static void
conn_exfree(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	struct mt_tls_conn *conn = ptr;

	if (conn == NULL)
		return;
	X509_free(conn->cert);
	X509_free(conn->leaf);
	free(conn);
}

static void
index_init(void)
{
	ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ctx_exfree);
	conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_exfree);
}

int
mt_tls_indexes(int *ctx_idx, int *conn_idx)
{
	pthread_once(&index_once, index_init);
	*ctx_idx = ctx_index;
	*conn_idx = conn_index;
	return (ctx_index < 0 || conn_index < 0) ? -1 : 0;
}

struct mt_tls_ctx *
mt_tls_ctx_of(const SSL *ssl)
{
	if (ctx_index < 0)
		return NULL;
	return SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_index);
}

struct mt_tls_conn *
mt_tls_conn_of(const SSL *ssl)
{
	if (conn_index < 0)
		return NULL;
	return SSL_get_ex_data(ssl, conn_index);
}

void
mt_tls_problem(struct mt_tls_build *b, const char *option, int error,
    const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	mt_config_report_add(b->report, b->svc->file,
	    mt_service_conf_line(b->svc, option), error, "[%s] %s",
	    b->svc->name, msg);
	if (error)
		b->errors++;
}

const char *
mt_tls_openssl_reason(char *buf, size_t n)
{
	unsigned long e = ERR_peek_error();
	const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

	if (r == NULL && e != 0 && ERR_SYSTEM_ERROR(e))
		r = strerror((int)ERR_GET_REASON(e));
	mt_strlcpy(buf, r != NULL ? r : "unknown error", n);
	ERR_clear_error();
	return buf;
}

static const char *
version_name(int v)
{
	switch (v) {
	case TLS1_2_VERSION: return "TLSv1.2";
	case TLS1_3_VERSION: return "TLSv1.3";
	case 0: return "the highest version";
	default: return "an old version";
	}
}

static void
set_protocol(struct mt_tls_build *b)
{
	int min = b->t->version_min, max = b->t->version_max;

	/* The config maps older versions to the floor, with a warning. */
	if (min < MT_TLS_MIN_VERSION)
		min = MT_TLS_MIN_VERSION;
	if (max != 0 && max < min) {
		mt_tls_problem(b, "sslVersionMax", 1,
		    "sslVersionMax = %s is below sslVersionMin = %s: no "
		    "protocol version is left to use", version_name(max),
		    version_name(min));
		return;
	}
	b->ctx->min_version = min;
	if (!SSL_CTX_set_min_proto_version(b->sc, min) ||
	    !SSL_CTX_set_max_proto_version(b->sc, max)) {
		ERR_clear_error();
		mt_tls_problem(b, "sslVersionMin", 1,
		    "this OpenSSL cannot limit the protocol to %s..%s",
		    version_name(min), version_name(max));
	}
}

static void
set_ciphers(struct mt_tls_build *b)
{
	const struct mt_tls_conf *t = b->t;
	char why[128];
	int level;

	if (t->ciphers != NULL && !SSL_CTX_set_cipher_list(b->sc, t->ciphers))
		mt_tls_problem(b, "ciphers", 1, "ciphers = %s matches no "
		    "usable TLS 1.2 cipher (%s); list them with: openssl "
		    "ciphers -v '%s'", t->ciphers,
		    mt_tls_openssl_reason(why, sizeof(why)), t->ciphers);
	level = SSL_CTX_get_security_level(b->sc);
	if (t->ciphers != NULL && level < MT_TLS_SECURITY_LEVEL)
		mt_tls_problem(b, "ciphers", 0, "ciphers = %s lowers the "
		    "OpenSSL security level to %d (the default is %d): weak "
		    "keys and signatures will be accepted", t->ciphers, level,
		    MT_TLS_SECURITY_LEVEL);
	if (t->ciphersuites != NULL &&
	    !SSL_CTX_set_ciphersuites(b->sc, t->ciphersuites))
		mt_tls_problem(b, "ciphersuites", 1, "ciphersuites = %s is "
		    "not a list of TLS 1.3 suites (%s); for example "
		    "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
		    t->ciphersuites, mt_tls_openssl_reason(why, sizeof(why)));
}

/* Name the first group of list that OpenSSL does not know. */
static void
find_bad_group(SSL_CTX *sc, const char *list, char *bad, size_t n)
{
	char buf[256], *tok, *save = NULL;

	mt_strlcpy(bad, list, n);
	mt_strlcpy(buf, list, sizeof(buf));
	for (tok = strtok_r(buf, ":,", &save); tok != NULL;
	    tok = strtok_r(NULL, ":,", &save)) {
		if (!SSL_CTX_set1_groups_list(sc, tok)) {
			mt_strlcpy(bad, tok, n);
			break;
		}
	}
	ERR_clear_error();
}

static void
set_curves(struct mt_tls_build *b)
{
	char bad[64];

	if (b->t->curves == NULL || SSL_CTX_set1_groups_list(b->sc,
	    b->t->curves))
		return;
	find_bad_group(b->sc, b->t->curves, bad, sizeof(bad));
	mt_tls_problem(b, "curves", 1, "curves = %s: unknown curve or group "
	    "\"%s\" (known ones include X25519, P-256, P-384, P-521, X448)",
	    b->t->curves, bad);
}

static char **
strlist_dup(const struct mt_strlist *l)
{
	char **v;
	size_t i;

	if ((v = calloc(l->n + 1, sizeof(*v))) == NULL)
		return NULL;
	for (i = 0; i < l->n; i++) {
		if ((v[i] = strdup(l->v[i])) == NULL) {
			while (i > 0)
				free(v[--i]);
			free(v);
			return NULL;
		}
	}
	return v;
}

static void
strv_free(char **v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void
ctx_destroy(struct mt_tls_ctx *ctx)
{
	if (ctx == NULL)
		return;
	mt_tls_cache_destroy(&ctx->cache);
	strv_free(ctx->hosts, ctx->nhosts);
	strv_free(ctx->ips, ctx->nips);
	free(ctx->sni);
	free(ctx->name);
	free(ctx);
}

/* Copy what each connection needs from the options; 0 or -1 (memory). */
static int
copy_names(struct mt_tls_build *b)
{
	const struct mt_tls_conf *t = b->t;
	struct mt_tls_ctx *ctx = b->ctx;
	size_t i;

	if ((ctx->name = strdup(b->svc->name)) == NULL ||
	    (t->sni != NULL && (ctx->sni = strdup(t->sni)) == NULL) ||
	    (ctx->hosts = strlist_dup(&t->check_host)) == NULL ||
	    (ctx->ips = strlist_dup(&t->check_ip)) == NULL)
		return -1;
	ctx->nhosts = t->check_host.n;
	ctx->nips = t->check_ip.n;
	for (i = 0; i < ctx->nhosts; i++)
		if (ctx->hosts[i][0] == '\0')
			mt_tls_problem(b, "checkHost", 1, "checkHost is empty");
	for (i = 0; i < ctx->nips; i++)
		if (!mt_tls_is_ip(ctx->ips[i]))
			mt_tls_problem(b, "checkIP", 1, "checkIP = %s is not "
			    "an IP address", ctx->ips[i]);
	return 0;
}

/* What every context gets, whatever the options say. */
static void
set_fixed(SSL_CTX *sc)
{
	SSL_CTX_set_security_level(sc, MT_TLS_SECURITY_LEVEL);
	SSL_CTX_set_purpose(sc, X509_PURPOSE_SSL_SERVER);
	X509_VERIFY_PARAM_set_hostflags(SSL_CTX_get0_param(sc),
	    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	/* Idle connections give their buffers back; libevent's writes. */
	SSL_CTX_set_mode(sc, SSL_MODE_RELEASE_BUFFERS |
	    SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_CLIENT |
	    SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(sc, mt_tls_new_session_cb);
	SSL_CTX_set_info_callback(sc, mt_tls_info_cb);
	SSL_CTX_set_client_cert_cb(sc, mt_tls_client_cert_cb);
}

/* A fresh SSL_CTX with our context attached; 0 or -1 (memory, logged). */
static int
ctx_alloc(struct mt_tls_build *b)
{
	char why[128];

	if (mt_tls_indexes(&ctx_index, &conn_index) == -1 ||
	    (b->sc = SSL_CTX_new(TLS_client_method())) == NULL)
		goto err0;
	if ((b->ctx = calloc(1, sizeof(*b->ctx))) == NULL)
		goto err1;
	if (mt_tls_cache_init(&b->ctx->cache, b->t->session_cache_size,
	    b->t->session_cache_timeout) == -1) {
		free(b->ctx);
		goto err1;
	}
	if (!SSL_CTX_set_ex_data(b->sc, ctx_index, b->ctx)) {
		ctx_destroy(b->ctx);
		goto err1;
	}
	b->ctx->ssl_ctx = b->sc;

	/* Success! */
	return 0;

err1:
	SSL_CTX_free(b->sc);
err0:
	mt_tls_problem(b, "client", 1, "cannot create a TLS context: %s",
	    mt_tls_openssl_reason(why, sizeof(why)));
	return -1;
}

struct mt_tls_ctx *
mt_tls_ctx_new(const struct mt_service_conf *svc,
    struct mt_config_report *report)
{
	struct mt_tls_build b = { svc, &svc->tls, report, NULL, NULL, 0 };

	if (ctx_alloc(&b) == -1)
		goto err0;
	b.ctx->verify_chain = b.t->verify_chain;
	b.ctx->verify_peer = b.t->verify_peer;
	b.ctx->verify = b.t->verify_chain || b.t->verify_peer;
	if (copy_names(&b) == -1) {
		mt_tls_problem(&b, "client", 1, "out of memory");
		goto err1;
	}
	set_fixed(b.sc);
	if (b.t->options_on != 0)
		SSL_CTX_set_options(b.sc, b.t->options_on);
	if (b.t->options_off != 0)
		SSL_CTX_clear_options(b.sc, b.t->options_off);
	if (b.t->no_renegotiation)
		SSL_CTX_set_options(b.sc, SSL_OP_NO_RENEGOTIATION);
	if (b.t->no_resume)	/* nothing is offered, nothing is kept */
		SSL_CTX_set_session_cache_mode(b.sc, SSL_SESS_CACHE_OFF);
	set_protocol(&b);
	set_ciphers(&b);
	set_curves(&b);
	mt_tls_set_trust(&b);
	mt_tls_load_client_cert(&b);
	if (b.errors > 0)
		goto err1;

	/* Success! */
	return b.ctx;

err1:
	/* Frees b.ctx too, through the ex_data hook. */
	SSL_CTX_free(b.sc);
err0:
	ERR_clear_error();
	return NULL;
}

void
mt_tls_ctx_free(struct mt_tls_ctx *ctx)
{
	if (ctx != NULL)
		SSL_CTX_free(ctx->ssl_ctx);
}
