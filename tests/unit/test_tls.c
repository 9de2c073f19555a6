/*
 * test_tls: contexts from options (and every problem they can report),
 * real in-memory handshakes against a test PKI with the reason phrase of
 * each refusal, and the pure phrase mapping. Sessions and the libevent
 * path are in test_tls_session.c, run from main() below.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "mailtunnel/tls.h"
#include "tls_int.h"
#include "tls_testpki.h"
#include "tls_tests.h"

const struct tp_pki *P;

struct mt_service_conf *
tt_svc(void)
{
	static struct mt_service_conf svc;

	memset(&svc, 0, sizeof(svc));
	svc.name = "mail";
	svc.file = TP_FILE;
	svc.line = 1;
	svc.tls.verify_chain = 1;
	svc.tls.ca_file = (char *)P->root_pem;
	svc.tls.session_cache_size = 1000;
	svc.tls.session_cache_timeout = 300;
	tp_mark_lines(&svc);
	return &svc;
}

static void
print_report(const struct mt_config_report *rep)
{
	size_t i;

	for (i = 0; i < rep->n; i++)
		print_message("  %s:%u: %s: %s\n", rep->v[i].file,
		    rep->v[i].line, rep->v[i].error ? "error" : "warning",
		    rep->v[i].msg);
}

struct mt_tls_ctx *
tt_ctx(struct mt_service_conf *svc)
{
	struct mt_config_report rep = { 0 };
	struct mt_tls_ctx *ctx = mt_tls_ctx_new(svc, &rep);

	if (ctx == NULL || rep.errors != 0)
		print_report(&rep);
	assert_non_null(ctx);
	assert_int_equal(rep.errors, 0);
	mt_config_report_free(&rep);
	return ctx;
}

/* Creation must fail with a problem containing needle at option's line. */
static void
ctx_fails(struct mt_service_conf *svc, const char *option, const char *needle)
{
	struct mt_config_report rep = { 0 };
	const struct mt_config_problem *p;
	struct mt_tls_ctx *ctx = mt_tls_ctx_new(svc, &rep);

	if ((p = tp_report_find(&rep, needle)) == NULL)
		print_report(&rep);
	assert_null(ctx);
	assert_non_null(p);
	assert_true(p->error);
	assert_string_equal(p->file, TP_FILE);
	assert_int_equal(p->line, tp_line(option));
	assert_non_null(strstr(p->msg, "[mail] "));
	mt_config_report_free(&rep);
}

SSL_CTX *
tt_server(const struct tp_cert *leaf, const struct tp_cert *chain1,
    const struct tp_cert *chain2)
{
	X509 *chain[2] = { chain1 != NULL ? chain1->x : NULL,
	    chain2 != NULL ? chain2->x : NULL };
	struct tp_server_opts o = { .leaf = leaf, .chain = chain,
	    .nchain = chain2 != NULL ? 2 : chain1 != NULL ? 1 : 0,
	    .num_tickets = -1 };
	SSL_CTX *sc = tp_server_ctx(&o);

	assert_non_null(sc);
	return sc;
}

/* One handshake of svc against sctx for host:995; sctx is freed. */
int
tt_connect(struct mt_service_conf *svc, SSL_CTX *sctx, const char *host,
    struct tp_result *r)
{
	struct mt_tls_ctx *ctx = tt_ctx(svc);
	SSL *ssl = mt_tls_ssl_new(ctx, host, "995");

	assert_non_null(ssl);
	tp_handshake(ssl, sctx, NULL, r);
	SSL_CTX_free(sctx);
	mt_tls_ctx_free(ctx);
	return r->ok;
}

/* The handshake must fail and its reason start with phrase. */
void
tt_refused(struct mt_service_conf *svc, SSL_CTX *sctx, const char *host,
    const char *phrase)
{
	struct tp_result r;

	assert_false(tt_connect(svc, sctx, host, &r));
	if (strncmp(r.reason, phrase, strlen(phrase)) != 0)
		print_message("reason: %s\nwanted: %s...\n", r.reason, phrase);
	assert_true(strncmp(r.reason, phrase, strlen(phrase)) == 0);
}

/* --- Contexts and their problems. -------------------------------------- */

static void
test_ctx_defaults(void **state)
{
	struct mt_service_conf *svc = tt_svc();
	struct mt_tls_ctx *ctx;
	SSL_CTX *sc;

	(void)state;
	svc->tls.ca_file = NULL;	/* the system store */
	ctx = tt_ctx(svc);
	sc = ctx->ssl_ctx;
	assert_int_equal(SSL_CTX_get_min_proto_version(sc), TLS1_2_VERSION);
	assert_int_equal(SSL_CTX_get_security_level(sc), 2);
	assert_int_equal(SSL_CTX_get_verify_mode(sc), SSL_VERIFY_PEER);
	assert_int_equal(SSL_CTX_get_mode(sc) & (SSL_MODE_RELEASE_BUFFERS |
	    SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER), SSL_MODE_RELEASE_BUFFERS |
	    SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	assert_int_equal(X509_VERIFY_PARAM_get_hostflags(
	    SSL_CTX_get0_param(sc)) & X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
	    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	mt_tls_ctx_free(ctx);
	mt_tls_ctx_free(NULL);
}

static void
test_ctx_no_system_store(void **state)
{
	struct mt_service_conf *svc = tt_svc();
	struct mt_config_report rep = { 0 };
	const struct mt_config_problem *p;
	struct mt_tls_ctx *ctx;

	(void)state;
	svc->tls.ca_file = NULL;
	setenv("SSL_CERT_FILE", "/nonexistent/cert.pem", 1);
	setenv("SSL_CERT_DIR", "/nonexistent/certs", 1);
	ctx = mt_tls_ctx_new(svc, &rep);
	unsetenv("SSL_CERT_FILE");
	unsetenv("SSL_CERT_DIR");
	assert_non_null(ctx);
	p = tp_report_find(&rep, "no system trust store was found");
	assert_non_null(p);
	assert_false(p->error);
	assert_non_null(strstr(p->msg, "install ca-certificates"));
	mt_tls_ctx_free(ctx);
	mt_config_report_free(&rep);
}

static void
test_verify_off_warns_once(void **state)
{
	static char *hosts[] = { "mail.example.net" };
	struct mt_service_conf *svc = tt_svc();
	struct mt_config_report rep = { 0 };
	struct mt_tls_ctx *ctx;
	struct tp_result r;
	SSL_CTX *sc;
	SSL *ssl;

	(void)state;
	svc->tls.verify_chain = 0;
	svc->tls.check_host.v = hosts;
	svc->tls.check_host.n = 1;
	ctx = mt_tls_ctx_new(svc, &rep);
	assert_non_null(ctx);
	assert_int_equal(rep.errors, 0);
	assert_int_equal(rep.n, 2);
	assert_string_equal(rep.v[0].msg, "certificate verification is OFF "
	    "for [mail]: anyone on the network path can read and change this "
	    "traffic");
	assert_int_equal(rep.v[0].line, tp_line("verifyChain"));
	assert_false(rep.v[0].error);
	assert_string_equal(rep.v[1].msg, "[mail] checkHost and checkIP are "
	    "not checked while verification is off");
	assert_int_equal(rep.v[1].line, tp_line("checkHost"));
	/* Off means off: an unknown self-signed server gets through. */
	ssl = mt_tls_ssl_new(ctx, "pop.gmail.com", "995");
	sc = tt_server(&P->selfsigned, NULL, NULL);
	assert_true(tp_handshake(ssl, sc, NULL, &r));
	SSL_CTX_free(sc);
	mt_tls_ctx_free(ctx);
	mt_config_report_free(&rep);
}

static void
test_bad_ca(void **state)
{
	struct mt_service_conf *svc = tt_svc();

	(void)state;
	svc->tls.ca_file = "/nonexistent/ca.pem";
	ctx_fails(svc, "CAfile", "CAfile = /nonexistent/ca.pem: cannot read "
	    "it: No such file or directory");
	svc->tls.ca_file = (char *)P->garbage;
	ctx_fails(svc, "CAfile", "no certificate could be loaded from it");
	svc->tls.ca_file = (char *)P->capath;
	ctx_fails(svc, "CAfile", "is a directory; use CApath");
	svc->tls.ca_file = NULL;
	svc->tls.ca_path = "/nonexistent/certs";
	ctx_fails(svc, "CApath", "CApath = /nonexistent/certs: cannot read "
	    "it: No such file or directory");
	svc->tls.ca_path = (char *)P->root_pem;
	ctx_fails(svc, "CApath", "is not a directory; use CAfile");
}

static void
test_capath(void **state)
{
	struct mt_service_conf *svc = tt_svc();
	struct mt_config_report rep = { 0 };
	const struct mt_config_problem *p;
	struct mt_tls_ctx *ctx;
	struct tp_result r;

	(void)state;
	svc->tls.ca_file = NULL;
	svc->tls.ca_path = (char *)P->capath;
	assert_true(tt_connect(svc, tt_server(&P->good, &P->inter, NULL),
	    "mail.example.net", &r));
	svc->tls.ca_path = (char *)P->empty_dir;
	ctx = mt_tls_ctx_new(svc, &rep);
	assert_non_null(ctx);
	p = tp_report_find(&rep, "holds no hashed certificate names");
	assert_non_null(p);
	assert_false(p->error);
	assert_int_equal(p->line, tp_line("CApath"));
	mt_tls_ctx_free(ctx);
	mt_config_report_free(&rep);
}

static void
test_bad_ciphers(void **state)
{
	struct mt_service_conf *svc = tt_svc();
	struct mt_config_report rep = { 0 };
	const struct mt_config_problem *p;
	struct mt_tls_ctx *ctx;

	(void)state;
	svc->tls.ciphers = "NOSUCHCIPHER";
	ctx_fails(svc, "ciphers", "ciphers = NOSUCHCIPHER matches no usable "
	    "TLS 1.2 cipher");
	svc->tls.ciphers = NULL;
	svc->tls.ciphersuites = "TLS_NO_SUCH_SUITE";
	ctx_fails(svc, "ciphersuites", "ciphersuites = TLS_NO_SUCH_SUITE is "
	    "not a list of TLS 1.3 suites");
	svc->tls.ciphersuites = NULL;
	svc->tls.curves = "X25519:bogus:P-256";
	ctx_fails(svc, "curves", "curves = X25519:bogus:P-256: unknown curve "
	    "or group \"bogus\"");
	svc->tls.curves = NULL;
	svc->tls.ciphers = "DEFAULT:@SECLEVEL=1";
	ctx = mt_tls_ctx_new(svc, &rep);
	assert_non_null(ctx);
	p = tp_report_find(&rep, "lowers the OpenSSL security level to 1");
	assert_non_null(p);
	assert_false(p->error);
	mt_tls_ctx_free(ctx);
	mt_config_report_free(&rep);
}

static void
test_versions(void **state)
{
	struct mt_service_conf *svc = tt_svc();

	(void)state;
	svc->tls.version_min = TLS1_3_VERSION;
	svc->tls.version_max = TLS1_2_VERSION;
	ctx_fails(svc, "sslVersionMax", "sslVersionMax = TLSv1.2 is below "
	    "sslVersionMin = TLSv1.3");
}

static void
test_names_checked(void **state)
{
	static char *empty[] = { "" };
	static char *notip[] = { "10.0.0.1", "mail.example.net" };
	struct mt_service_conf *svc = tt_svc();

	(void)state;
	svc->tls.check_host.v = empty;
	svc->tls.check_host.n = 1;
	ctx_fails(svc, "checkHost", "checkHost is empty");
	svc->tls.check_host.n = 0;
	svc->tls.check_ip.v = notip;
	svc->tls.check_ip.n = 2;
	ctx_fails(svc, "checkIP", "checkIP = mail.example.net is not an IP "
	    "address");
	svc->tls.check_ip.n = 0;
	svc->tls.verify_peer = 1;
	svc->tls.ca_file = NULL;
	ctx_fails(svc, "verifyPeer", "verifyPeer = yes needs CAfile or "
	    "CApath");
}

static void
test_client_cert(void **state)
{
	struct mt_service_conf *svc = tt_svc();
	struct mt_tls_ctx *ctx;
	char path[TP_PATH + 16];

	(void)state;
	svc->tls.cert = (char *)P->client_pem;
	svc->tls.key = (char *)P->client_key;
	ctx = tt_ctx(svc);
	assert_non_null(SSL_CTX_get0_certificate(ctx->ssl_ctx));
	mt_tls_ctx_free(ctx);
	/* Without key, the key is in the cert file (as stunnel). */
	svc->tls.cert = (char *)P->client_both;
	svc->tls.key = NULL;
	mt_tls_ctx_free(tt_ctx(svc));
	svc->tls.cert = (char *)P->client_pem;
	svc->tls.key = (char *)P->other_key;
	ctx_fails(svc, "key", "does not match cert = ");
	svc->tls.key = (char *)P->world_key;
	ctx_fails(svc, "key", "other users can read this private key (mode "
	    "0644); run: chmod 600");
	svc->tls.key = (char *)P->enc_key;
	ctx_fails(svc, "key", "is protected by a passphrase");
	svc->tls.key = (char *)P->client_pem;
	ctx_fails(svc, "key", "other users can read");
	/* Group may read (a service group), not write. */
	snprintf(path, sizeof(path), "%s/group.key", P->dir);
	assert_int_equal(tp_write_pem(path, 0640, NULL, 0, P->client.key), 0);
	svc->tls.key = path;
	mt_tls_ctx_free(tt_ctx(svc));
	assert_int_equal(tp_write_pem(path, 0620, NULL, 0, P->client.key), 0);
	ctx_fails(svc, "key", "other users can change this private key (mode "
	    "0620)");
	svc->tls.key = "/nonexistent/client.key";
	ctx_fails(svc, "key", "key = /nonexistent/client.key: cannot read it");
	svc->tls.cert = (char *)P->garbage;
	ctx_fails(svc, "cert", "not a usable certificate (");
	/* Our own certificate must pass the security level too. */
	svc->tls.cert = (char *)P->weak_cert;
	ctx_fails(svc, "cert", "not a usable certificate (ee key too small)");
	svc->tls.cert = "/nonexistent/client.pem";
	ctx_fails(svc, "cert", "cert = /nonexistent/client.pem: cannot read");
	svc->tls.cert = NULL;
	svc->tls.key = (char *)P->client_key;
	ctx_fails(svc, "key", "is set without cert");
}

static void
test_key_not_usable(void **state)
{
	struct mt_service_conf *svc = tt_svc();

	(void)state;
	svc->tls.cert = (char *)P->client_pem;
	svc->tls.key = (char *)P->garbage_key;
	ctx_fails(svc, "key", "not a usable private key (");
	svc->tls.key = (char *)P->empty_dir;
	ctx_fails(svc, "key", "is a directory; give a PEM file");
	svc->tls.key = (char *)P->other_key;
	svc->tls.cert = (char *)P->client_both;
	ctx_fails(svc, "key", "does not match cert");
}

/* Every problem is reported, and nothing is half-built. */
static void
test_all_problems_at_once(void **state)
{
	struct mt_service_conf *svc = tt_svc();
	struct mt_config_report rep = { 0 };

	(void)state;
	svc->tls.ca_file = "/nonexistent/ca.pem";
	svc->tls.ciphers = "NOSUCHCIPHER";
	svc->tls.curves = "bogus";
	svc->tls.key = "/nonexistent/key";
	assert_null(mt_tls_ctx_new(svc, &rep));
	assert_int_equal(rep.errors, 4);
	assert_int_equal(rep.v[0].line, tp_line("ciphers"));
	assert_int_equal(rep.v[1].line, tp_line("curves"));
	assert_int_equal(rep.v[2].line, tp_line("CAfile"));
	assert_int_equal(rep.v[3].line, tp_line("key"));
	assert_int_equal(ERR_peek_error(), 0);
	mt_config_report_free(&rep);
}

static int
setup(void **state)
{
	(void)state;
	P = tp_pki();
	return P != NULL ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ctx_defaults),
		cmocka_unit_test(test_ctx_no_system_store),
		cmocka_unit_test(test_verify_off_warns_once),
		cmocka_unit_test(test_bad_ca),
		cmocka_unit_test(test_capath),
		cmocka_unit_test(test_bad_ciphers),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_names_checked),
		cmocka_unit_test(test_client_cert),
		cmocka_unit_test(test_key_not_usable),
		cmocka_unit_test(test_all_problems_at_once),
	};
	int failed;

	/* Writing to a closed peer must be an error, not the end of us. */
	signal(SIGPIPE, SIG_IGN);
	if (setup(NULL) == -1)
		return 1;
	failed = cmocka_run_group_tests_name("tls_ctx", tests, NULL, NULL);
	failed += tt_run_verify_tests();
	failed += tt_run_session_tests();
	failed += tt_run_phrase_tests();
	tp_pki_free();
	OPENSSL_cleanup();
	return failed != 0;
}
