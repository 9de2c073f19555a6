/*
 * tls_verify: the verify callback. OpenSSL's own chain, time, purpose,
 * key-strength and name checks stay in charge; the callback adds what it
 * cannot do alone:
 *  - verifyPeer (pinning, as stunnel): the server's certificate must be in
 *    CAfile/CApath. Without verifyChain, chain errors are forgiven, but not
 *    errors about the server's certificate itself (expiry, name...).
 *  - several checkIP values, any of which may match (the verify param
 *    holds only one address).
 *  - it remembers the first refusal (which certificate, at what depth), so
 *    that tls_reason.c can say what was wrong after the handshake failed.
 * The client certificate callback here only notes that the server asked
 * for a certificate we do not have, for the same reason.
 */
#include "config.h"

#include <arpa/inet.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mailtunnel/tls.h"
#include "tls_int.h"

/* Errors verifyPeer alone forgives: they are all about a missing issuer. */
static int
chain_error(int depth, int err)
{
	if (depth > 0)
		return 1;
	switch (err) {
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_UNTRUSTED:
		return 1;
	default:
		return 0;
	}
}

static int
reject(struct mt_tls_conn *conn, X509_STORE_CTX *xs)
{
	X509 *cert = X509_STORE_CTX_get_current_cert(xs);
	X509 *leaf = X509_STORE_CTX_get0_cert(xs);
	STACK_OF(X509) *sent = X509_STORE_CTX_get0_untrusted(xs);

	if (conn->rejected)
		return 0;
	conn->rejected = 1;
	conn->verify_error = X509_STORE_CTX_get_error(xs);
	conn->depth = X509_STORE_CTX_get_error_depth(xs);
	conn->sent = sent != NULL ? sk_X509_num(sent) : 0;
	if (cert != NULL && X509_up_ref(cert))
		conn->cert = cert;
	if (leaf != NULL && X509_up_ref(leaf))
		conn->leaf = leaf;
	return 0;
}

/* Whether the store holds this very certificate (not just its issuer). */
static int
pinned(X509_STORE_CTX *xs, X509 *leaf)
{
	STACK_OF(X509) *found;
	int i, hit = 0;

	found = X509_STORE_CTX_get1_certs(xs, X509_get_subject_name(leaf));
	if (found == NULL)
		return 0;
	for (i = 0; i < sk_X509_num(found) && !hit; i++)
		hit = X509_cmp(sk_X509_value(found, i), leaf) == 0;
	sk_X509_pop_free(found, X509_free);
	return hit;
}

static int
ip_matches(const struct mt_tls_ctx *ctx, X509 *leaf)
{
	char ip[INET6_ADDRSTRLEN + 8];
	size_t i;

	for (i = 0; i < ctx->nips; i++)
		if (X509_check_ip_asc(leaf, mt_tls_ip_unbracket(ctx->ips[i],
		    ip, sizeof(ip)), 0) == 1)
			return 1;
	return 0;
}

/* Checks on the server's own certificate once its chain is fine. */
static int
check_leaf(const struct mt_tls_ctx *ctx, struct mt_tls_conn *conn,
    X509_STORE_CTX *xs)
{
	X509 *leaf = X509_STORE_CTX_get0_cert(xs);

	if (ctx->nips > 1 && !ip_matches(ctx, leaf)) {
		X509_STORE_CTX_set_error(xs, X509_V_ERR_IP_ADDRESS_MISMATCH);
		return reject(conn, xs);
	}
	if (ctx->verify_peer && !pinned(xs, leaf)) {
		conn->pin_miss = 1;
		X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REJECTED);
		return reject(conn, xs);
	}
	return 1;
}

/* Send none, but remember the request: it explains a refusal later. */
int
mt_tls_client_cert_cb(SSL *ssl, X509 **x509, EVP_PKEY **pkey)
{
	struct mt_tls_conn *conn = mt_tls_conn_of(ssl);

	if (conn != NULL)
		conn->cert_requested = 1;
	return 0;
}

int
mt_tls_verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	struct mt_tls_conn *conn;
	struct mt_tls_ctx *ctx;
	int depth = X509_STORE_CTX_get_error_depth(xs);

	if (ssl == NULL || (ctx = mt_tls_ctx_of(ssl)) == NULL ||
	    (conn = mt_tls_conn_of(ssl)) == NULL)
		return ok;
	if (!ok) {
		if (ctx->verify_chain ||
		    !chain_error(depth, X509_STORE_CTX_get_error(xs)))
			return reject(conn, xs);
		/* Forgiven: do not let it linger as the verify result. */
		X509_STORE_CTX_set_error(xs, X509_V_OK);
		return 1;
	}
	/* OpenSSL calls once more per certificate, leaf last, when fine. */
	if (depth == 0)
		return check_leaf(ctx, conn, xs);
	return 1;
}
