/*
 * tls_tests: helpers shared by the files of the TLS unit test (test_tls.c
 * holds them and main()). The PKI P is built once in main().
 */
#ifndef MAILTUNNEL_TLS_TESTS_H
#define MAILTUNNEL_TLS_TESTS_H

#include <openssl/ssl.h>

#include "mailtunnel/config.h"
#include "mailtunnel/tls.h"
#include "tls_testpki.h"

extern const struct tp_pki *P;

/* A service "mail" trusting the test root, caching sessions (static). */
struct mt_service_conf *tt_svc(void);
/* mt_tls_ctx_new() that must succeed without errors. */
struct mt_tls_ctx *tt_ctx(struct mt_service_conf *svc);
/* A test server sending leaf, then chain1 and chain2 when not NULL. */
SSL_CTX *tt_server(const struct tp_cert *leaf, const struct tp_cert *chain1,
    const struct tp_cert *chain2);
/* One handshake of a new context for svc with host:995; frees sctx. */
int tt_connect(struct mt_service_conf *svc, SSL_CTX *sctx, const char *host,
    struct tp_result *r);
/* tt_connect() must fail with a reason starting with phrase. */
void tt_refused(struct mt_service_conf *svc, SSL_CTX *sctx, const char *host,
    const char *phrase);

/* Each runs one cmocka group; returns the number of failures. */
int tt_run_verify_tests(void);
int tt_run_session_tests(void);
int tt_run_phrase_tests(void);

#endif
