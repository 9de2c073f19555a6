/*
 * test_tls_verify: real handshakes against the test PKI. Good servers get
 * through (with the expected SNI); each bad one is refused with its own
 * reason phrase.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/ssl.h>

#include "mailtunnel/tls.h"
#include "tls_tests.h"

static SSL_CTX *
good_server(void)
{
	return tt_server(&P->good, &P->inter, NULL);
}

static SSL_CTX *
server_with(int min, int max, const char *ciphers, X509 *client_ca)
{
	X509 *chain[1] = { P->inter.x };
	struct tp_server_opts o = { .leaf = &P->good, .chain = chain,
	    .nchain = 1, .min_version = min, .max_version = max,
	    .num_tickets = -1, .ciphers = ciphers, .client_ca = client_ca };
	SSL_CTX *sc = tp_server_ctx(&o);

	assert_non_null(sc);
	return sc;
}

static SSL_CTX *
versioned_server(int min, int max, const char *ciphers)
{
	return server_with(min, max, ciphers, NULL);
}

static void
test_good(void **state)
{
	struct tp_result r;

	(void)state;
	assert_true(tt_connect(tt_svc(), good_server(), "mail.example.net",
	    &r));
	assert_string_equal(r.sni, "mail.example.net");
	assert_false(r.resumed);
	assert_non_null(strstr(r.describe, "TLSv1.3 TLS_"));
	assert_non_null(strstr(r.describe, ", full handshake"));
	/* The other name of the certificate will do as well. */
	assert_true(tt_connect(tt_svc(), good_server(), "pop.example.net",
	    &r));
	assert_string_equal(r.sni, "pop.example.net");
}

static void
test_sni_rules(void **state)
{
	static char *hosts[] = { "pop.example.net", "mail.example.net" };
	struct mt_service_conf *svc = tt_svc();
	struct tp_result r;

	(void)state;
	/* sni = ... is sent and checked. */
	svc->tls.sni = "pop.example.net";
	assert_true(tt_connect(svc, good_server(), "10.9.8.7", &r));
	assert_string_equal(r.sni, "pop.example.net");
	/* Empty sni: none sent; the target name is checked. */
	svc->tls.sni = "";
	assert_true(tt_connect(svc, good_server(), "mail.example.net", &r));
	assert_string_equal(r.sni, "");
	/* The first checkHost is the SNI; the trailing dot goes. */
	svc = tt_svc();
	svc->tls.check_host.v = hosts;
	svc->tls.check_host.n = 2;
	assert_true(tt_connect(svc, good_server(), "127.0.0.1", &r));
	assert_string_equal(r.sni, "pop.example.net");
	assert_true(tt_connect(tt_svc(), good_server(), "mail.example.net.",
	    &r));
	assert_string_equal(r.sni, "mail.example.net");
}

static void
test_ip_targets(void **state)
{
	static char *ips[] = { "10.0.0.1", "127.0.0.1" };
	static char *bad_ips[] = { "10.0.0.1", "10.0.0.2" };
	struct mt_service_conf *svc = tt_svc();
	struct tp_result r;

	(void)state;
	/* An IP target: no SNI (RFC 6066), and the address is checked. */
	assert_true(tt_connect(svc, tt_server(&P->ip, &P->inter, NULL),
	    "127.0.0.1", &r));
	assert_string_equal(r.sni, "");
	assert_true(tt_connect(svc, tt_server(&P->ip, &P->inter, NULL),
	    "[::1]", &r));
	assert_string_equal(r.sni, "");
	tt_refused(svc, good_server(), "127.0.0.1", "IP address mismatch: "
	    "127.0.0.1 not in certificate (certificate is for "
	    "mail.example.net, pop.example.net)");
	/* Several checkIP: any may match. */
	svc->tls.check_ip.v = ips;
	svc->tls.check_ip.n = 2;
	assert_true(tt_connect(svc, tt_server(&P->ip, &P->inter, NULL),
	    "ip.example.net", &r));
	assert_string_equal(r.sni, "ip.example.net");
	svc->tls.check_ip.v = bad_ips;
	tt_refused(svc, tt_server(&P->ip, &P->inter, NULL), "127.0.0.1",
	    "IP address mismatch: 10.0.0.1 or 10.0.0.2 not in certificate "
	    "(certificate is for 127.0.0.1, ::1)");
	svc->tls.check_ip.n = 1;
	tt_refused(svc, tt_server(&P->ip, &P->inter, NULL), "127.0.0.1",
	    "IP address mismatch: 10.0.0.1 not in certificate");
}

static void
test_host_names(void **state)
{
	static char *hosts[] = { "imap.example.org", "pop.example.net" };
	static char *bad[] = { "imap.example.org", "smtp.example.org" };
	struct mt_service_conf *svc = tt_svc();
	struct tp_result r;

	(void)state;
	tt_refused(svc, good_server(), "pop.gmail.com", "host name mismatch: "
	    "certificate is for mail.example.net, pop.example.net, expected "
	    "pop.gmail.com");
	svc->tls.check_host.v = hosts;
	svc->tls.check_host.n = 2;
	assert_true(tt_connect(svc, good_server(), "pop.gmail.com", &r));
	assert_string_equal(r.sni, "imap.example.org");
	svc->tls.check_host.v = bad;
	tt_refused(svc, good_server(), "mail.example.net", "host name "
	    "mismatch: certificate is for mail.example.net, pop.example.net, "
	    "expected imap.example.org or smtp.example.org");
	/* A whole-label wildcard matches; a partial one never does. */
	assert_true(tt_connect(tt_svc(), tt_server(&P->wildcard, &P->inter,
	    NULL), "mail.example.net", &r));
	tt_refused(tt_svc(), tt_server(&P->partial, &P->inter, NULL),
	    "mail.example.net", "host name mismatch: certificate is for "
	    "m*.example.net, expected mail.example.net");
}

static void
test_dates(void **state)
{
	(void)state;
	tt_refused(tt_svc(), tt_server(&P->expired, &P->inter, NULL),
	    "mail.example.net", "certificate expired on 2021-01-01 "
	    "(CN=mail.example.net)");
	tt_refused(tt_svc(), tt_server(&P->notyet, &P->inter, NULL),
	    "mail.example.net", "certificate not yet valid until 2099-01-01 "
	    "(CN=mail.example.net)");
}

static void
test_chains(void **state)
{
	(void)state;
	tt_refused(tt_svc(), tt_server(&P->selfsigned, NULL, NULL),
	    "mail.example.net", "self-signed certificate "
	    "(CN=mail.example.net)");
	tt_refused(tt_svc(), tt_server(&P->unknown, &P->other_inter, NULL),
	    "mail.example.net", "unknown CA: issuer CN=Other Root is not "
	    "trusted");
	tt_refused(tt_svc(), tt_server(&P->unknown, &P->other_inter,
	    &P->other_root), "mail.example.net", "unknown CA: issuer "
	    "CN=Other Root is not trusted");
	tt_refused(tt_svc(), tt_server(&P->good, NULL, NULL),
	    "mail.example.net", "incomplete chain: the server did not send "
	    "the intermediate certificate for CN=mail.example.net (issued by "
	    "CN=Test Intermediate, which is neither sent nor trusted)");
}

static void
test_weak(void **state)
{
	(void)state;
	tt_refused(tt_svc(), tt_server(&P->rsa1024, &P->inter, NULL),
	    "mail.example.net", "key too weak: RSA 1024 bits (security level "
	    "2 requires 2048) (CN=mail.example.net)");
	tt_refused(tt_svc(), tt_server(&P->sha1, &P->inter, NULL),
	    "mail.example.net", "signature algorithm too weak: SHA-1 "
	    "(security level 2) (CN=mail.example.net)");
	tt_refused(tt_svc(), tt_server(&P->clientonly, &P->inter, NULL),
	    "mail.example.net", "certificate not valid for a TLS server "
	    "(extended key usage) (CN=mail.example.net)");
}

static void
test_pinning(void **state)
{
	struct mt_service_conf *svc = tt_svc();
	char self[TP_PATH + 16];
	struct tp_result r;

	(void)state;
	/* Pinned without chain: the leaf alone is trusted, even unsent CA. */
	svc->tls.verify_peer = 1;
	svc->tls.verify_chain = 0;
	svc->tls.ca_file = (char *)P->leaf_pem;
	assert_true(tt_connect(svc, tt_server(&P->good, NULL, NULL),
	    "mail.example.net", &r));
	/* ...but still for the right name. */
	tt_refused(svc, good_server(), "pop.gmail.com", "host name mismatch");
	/* Pinned with chain: both must hold. */
	svc->tls.verify_chain = 1;
	svc->tls.ca_file = (char *)P->root_leaf_pem;
	assert_true(tt_connect(svc, good_server(), "mail.example.net", &r));
	svc->tls.ca_file = (char *)P->leaf_pem;
	tt_refused(svc, good_server(), "mail.example.net", "unknown CA");
	/* A valid chain is not a pin. */
	svc->tls.verify_chain = 0;
	svc->tls.ca_file = (char *)P->root_pem;
	tt_refused(svc, good_server(), "mail.example.net", "certificate not "
	    "pinned: not found in CAfile (CN=mail.example.net)");
	svc->tls.ca_file = NULL;
	svc->tls.ca_path = (char *)P->capath;
	tt_refused(svc, good_server(), "mail.example.net", "certificate not "
	    "pinned: not found in CApath");
	svc->tls.ca_path = (char *)P->pin_capath;
	assert_true(tt_connect(svc, good_server(), "mail.example.net", &r));
	/* The usual pin: a server's own self-signed certificate. */
	snprintf(self, sizeof(self), "%s/self.pem", P->dir);
	assert_int_equal(tp_write_pem(self, 0644, &P->selfsigned.x, 1, NULL),
	    0);
	svc->tls.ca_path = NULL;
	svc->tls.ca_file = self;
	assert_true(tt_connect(svc, tt_server(&P->selfsigned, NULL, NULL),
	    "mail.example.net", &r));
	/* Pinning forgives a missing chain, not an expired certificate. */
	svc->tls.ca_path = NULL;
	svc->tls.ca_file = (char *)P->leaf_pem;
	tt_refused(svc, tt_server(&P->expired, NULL, NULL), "mail.example.net",
	    "certificate expired on 2021-01-01");
}

static void
test_protocol(void **state)
{
	struct mt_service_conf *svc = tt_svc();

	(void)state;
	tt_refused(tt_svc(), versioned_server(TLS1_VERSION, TLS1_1_VERSION,
	    NULL), "mail.example.net", "protocol version: server offers only "
	    "TLS 1.0/1.1 (floor is TLS 1.2)");
	svc->tls.version_min = TLS1_3_VERSION;
	tt_refused(svc, versioned_server(0, TLS1_2_VERSION, NULL),
	    "mail.example.net", "protocol version: server offers only TLS 1.2 "
	    "or older (floor is TLS 1.3)");
	svc = tt_svc();
	svc->tls.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256";
	tt_refused(svc, versioned_server(0, TLS1_2_VERSION,
	    "ECDHE-ECDSA-AES256-GCM-SHA384"), "mail.example.net",
	    "no shared cipher");
}

static void
test_client_certificates(void **state)
{
	struct mt_service_conf *svc = tt_svc();
	struct tp_result r;

	(void)state;
	/* TLS 1.3 says so with an alert; TLS 1.2 only "handshake failure". */
	tt_refused(svc, server_with(0, 0, NULL, P->root.x),
	    "mail.example.net", "the server requires a client certificate "
	    "(set cert and key)");
	tt_refused(svc, server_with(0, TLS1_2_VERSION, NULL, P->root.x),
	    "mail.example.net", "the server requires a client certificate "
	    "(set cert and key)");
	svc->tls.cert = (char *)P->client_pem;
	svc->tls.key = (char *)P->client_key;
	assert_true(tt_connect(svc, server_with(0, 0, NULL, P->root.x),
	    "mail.example.net", &r));
	tt_refused(svc, server_with(0, TLS1_2_VERSION, NULL,
	    P->other_root.x), "mail.example.net", "the server refused our "
	    "client certificate (tlsv1 alert unknown ca)");
}

static void
test_not_tls(void **state)
{
	struct mt_tls_ctx *ctx = tt_ctx(tt_svc());
	struct tp_result r;

	(void)state;
	tp_handshake(mt_tls_ssl_new(ctx, "mail.example.net", "110"), NULL,
	    "+OK POP3 server ready\r\n", &r);
	assert_string_equal(r.reason, "server sent a plaintext reply, not TLS "
	    "(wrong port or STARTTLS needed?)");
	tp_handshake(mt_tls_ssl_new(ctx, "mail.example.net", "143"), NULL,
	    "* OK IMAP4rev1 ready\r\n", &r);
	assert_string_equal(r.reason, "server sent a plaintext reply, not TLS "
	    "(wrong port or STARTTLS needed?)");
	tp_handshake(mt_tls_ssl_new(ctx, "mail.example.net", "80"), NULL,
	    "HTTP/1.1 400 Bad Request\r\n\r\n", &r);
	assert_string_equal(r.reason, "server sent a plaintext reply, not TLS "
	    "(wrong port or STARTTLS needed?)");
	tp_handshake(mt_tls_ssl_new(ctx, "mail.example.net", "995"), NULL, "",
	    &r);
	assert_string_equal(r.reason, "connection closed during handshake");
	mt_tls_ctx_free(ctx);
}

int
tt_run_verify_tests(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_sni_rules),
		cmocka_unit_test(test_ip_targets),
		cmocka_unit_test(test_host_names),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_chains),
		cmocka_unit_test(test_weak),
		cmocka_unit_test(test_pinning),
		cmocka_unit_test(test_protocol),
		cmocka_unit_test(test_client_certificates),
		cmocka_unit_test(test_not_tls),
	};

	return cmocka_run_group_tests_name("tls_verify", tests, NULL, NULL);
}
