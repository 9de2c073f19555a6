/*
 * tls_conn: the SSL of one connection: SNI, the names the server must
 * prove, and the session offered for resumption. See
 * include/mailtunnel/tls.h.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "mailtunnel/log.h"
#include "mailtunnel/tls.h"
#include "mailtunnel/util.h"
#include "tls_int.h"

char *
mt_tls_ip_unbracket(const char *s, char *buf, size_t n)
{
	size_t len = strlen(s);

	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		s++;
		len -= 2;
	}
	if (len >= n)
		len = n - 1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return buf;
}

int
mt_tls_is_ip(const char *s)
{
	unsigned char addr[16];
	char buf[INET6_ADDRSTRLEN + 8];

	if (strlen(s) >= sizeof(buf))
		return 0;
	mt_tls_ip_unbracket(s, buf, sizeof(buf));
	return inet_pton(AF_INET, buf, addr) == 1 ||
	    inet_pton(AF_INET6, buf, addr) == 1;
}

/* The name SNI would carry, before the "never an IP" rule. */
static const char *
sni_candidate(const struct mt_tls_ctx *ctx, const char *host)
{
	if (ctx->sni != NULL)
		return ctx->sni;
	if (ctx->nhosts > 0)
		return ctx->hosts[0];
	return host;
}

/* The name checked when neither checkHost nor checkIP is set. */
static const char *
checked_name(const struct mt_tls_ctx *ctx, const char *host)
{
	return (ctx->sni != NULL && ctx->sni[0] != '\0') ? ctx->sni : host;
}

static int
set_sni(SSL *ssl, const struct mt_tls_ctx *ctx, const char *host)
{
	const char *name = sni_candidate(ctx, host);
	char buf[256];
	size_t len = strlen(name);

	/* RFC 6066: a host name, without the trailing dot; never an IP. */
	if (len == 0 || len >= sizeof(buf) || mt_tls_is_ip(name) ||
	    strchr(name, '*') != NULL)
		return 0;
	memcpy(buf, name, len + 1);
	if (buf[len - 1] == '.')
		buf[len - 1] = '\0';
	return SSL_set_tlsext_host_name(ssl, buf) == 1 ? 0 : -1;
}

int
mt_tls_set_peer_names(SSL *ssl, const struct mt_tls_ctx *ctx,
    const char *host)
{
	X509_VERIFY_PARAM *p = SSL_get0_param(ssl);
	char ip[INET6_ADDRSTRLEN + 8];
	const char *name;
	size_t i;

	X509_VERIFY_PARAM_set_hostflags(p,
	    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (ctx->nhosts > 0 || ctx->nips > 0) {
		/* Any checkHost may match; every kind set must match. */
		for (i = 0; i < ctx->nhosts; i++)
			if (!X509_VERIFY_PARAM_add1_host(p, ctx->hosts[i], 0))
				return -1;
		/* The param holds one IP; several are checked in the cb. */
		if (ctx->nips == 1 && !X509_VERIFY_PARAM_set1_ip_asc(p,
		    mt_tls_ip_unbracket(ctx->ips[0], ip, sizeof(ip))))
			return -1;
		return 0;
	}
	name = checked_name(ctx, host);
	if (mt_tls_is_ip(name))
		return X509_VERIFY_PARAM_set1_ip_asc(p,
		    mt_tls_ip_unbracket(name, ip, sizeof(ip))) ? 0 : -1;
	return X509_VERIFY_PARAM_set1_host(p, name, 0) ? 0 : -1;
}

/* Append "a or b or c" to buf. */
static void
join_or(char *buf, size_t n, char *const *v, size_t nv)
{
	size_t i, len;

	for (i = 0; i < nv; i++) {
		len = strlen(buf);
		if (len + 1 >= n)
			return;
		snprintf(buf + len, n - len, "%s%s", len > 0 ? " or " : "",
		    v[i]);
	}
}

void
mt_tls_expected_names(const struct mt_tls_ctx *ctx, const char *host,
    char *buf, size_t n)
{
	char ip[INET6_ADDRSTRLEN + 8];
	const char *name;

	buf[0] = '\0';
	if (ctx->nhosts > 0 || ctx->nips > 0) {
		join_or(buf, n, ctx->hosts, ctx->nhosts);
		join_or(buf, n, ctx->ips, ctx->nips);
		return;
	}
	name = checked_name(ctx, host);
	if (mt_tls_is_ip(name))
		name = mt_tls_ip_unbracket(name, ip, sizeof(ip));
	mt_strlcpy(buf, name, n);
}

static struct mt_tls_conn *
conn_new(const char *host, const char *port)
{
	size_t hlen = strlen(host), plen = strlen(port);
	struct mt_tls_conn *conn;

	if ((conn = calloc(1, sizeof(*conn) + hlen + plen + 2)) == NULL)
		return NULL;
	/* A space cannot occur in a host or a port: keys cannot collide. */
	memcpy(conn->key, host, hlen);
	conn->key[hlen] = ' ';
	memcpy(conn->key + hlen + 1, port, plen + 1);
	conn->hostlen = hlen;
	return conn;
}

/* "mail.example.net." is mail.example.net, for SNI and for the check. */
static const char *
strip_root_dot(const char *host, char *buf, size_t n)
{
	size_t len = strlen(host);

	if (len < 2 || len >= n || host[len - 1] != '.')
		return host;
	memcpy(buf, host, len - 1);
	buf[len - 1] = '\0';
	return buf;
}

SSL *
mt_tls_ssl_new(struct mt_tls_ctx *ctx, const char *target_host,
    const char *target_port)
{
	struct mt_log_ctx lc = { ctx->name, 0, NULL, 0, 0 };
	struct mt_tls_conn *conn;
	int ctx_idx, conn_idx;
	SSL_SESSION *sess;
	char host[256];
	SSL *ssl;

	target_host = strip_root_dot(target_host != NULL ? target_host :
	    "localhost", host, sizeof(host));
	if (mt_tls_indexes(&ctx_idx, &conn_idx) == -1 ||
	    (conn = conn_new(target_host, target_port != NULL ?
	    target_port : "")) == NULL)
		goto err0;
	if ((ssl = SSL_new(ctx->ssl_ctx)) == NULL)
		goto err1;
	if (!SSL_set_ex_data(ssl, conn_idx, conn))
		goto err2;
	/* From here on, SSL_free() frees conn. */
	conn = NULL;
	if (set_sni(ssl, ctx, target_host) == -1)
		goto err2;
	if (ctx->verify && mt_tls_set_peer_names(ssl, ctx, target_host) == -1)
		goto err2;
	sess = mt_tls_cache_get(&ctx->cache, mt_tls_conn_of(ssl)->key,
	    mt_tls_now_ms());
	if (sess != NULL) {
		SSL_set_session(ssl, sess);
		SSL_SESSION_free(sess);
	}
	SSL_set_connect_state(ssl);

	/* Success! */
	return ssl;

err2:
	SSL_free(ssl);
err1:
	free(conn);
err0:
	mt_log_c(&lc, MT_LOG_ERR, "cannot set up TLS for %s: out of memory",
	    target_host);
	return NULL;
}

char *
mt_tls_describe(const SSL *ssl, char *buf, size_t n)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);

	snprintf(buf, n, "%s %s, %s", SSL_get_version(ssl),
	    c != NULL ? SSL_CIPHER_get_name(c) : "(no cipher)",
	    SSL_session_reused(ssl) ? "resumed" : "full handshake");
	return buf;
}
