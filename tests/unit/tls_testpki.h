/*
 * tls_testpki: what the TLS unit test needs around the code under test: a
 * PKI made at test time with the OpenSSL API, a TLS server of our own, an
 * in-memory handshake driver, and stand-ins for the two config functions
 * tls calls (the config module provides the real ones).
 *
 * Everything returned is owned by the caller and freed with the matching
 * tp_*_free() or OpenSSL's *_free().
 */
#ifndef MAILTUNNEL_TLS_TESTPKI_H
#define MAILTUNNEL_TLS_TESTPKI_H

#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "mailtunnel/config.h"

struct tp_cert {
	X509 *x;
	EVP_PKEY *key;
};

struct tp_spec {
	const char *cn;
	const char *dns;	/* comma-separated SAN DNS names; NULL: none */
	const char *ip;		/* comma-separated SAN addresses; NULL: none */
	int ca;
	const char *not_before;	/* "YYYYMMDDHHMMSSZ"; NULL: yesterday */
	const char *not_after;	/* NULL: in 30 days */
	const EVP_MD *md;	/* NULL: SHA-256 */
	const char *eku;	/* "serverAuth", "clientAuth"; NULL: no EKU */
	int rsa_bits;		/* 0: an EC P-256 key */
};

/* A certificate signed by issuer (NULL: self-signed); 0 or -1. */
int tp_make(struct tp_cert *out, const struct tp_spec *spec,
    const struct tp_cert *issuer);
void tp_cert_free(struct tp_cert *c);

/* Write certificates then (if key) the key as PEM, with this mode. */
int tp_write_pem(const char *path, mode_t mode, X509 *const *certs,
    size_t ncerts, EVP_PKEY *key);

/*
 * The PKI every test uses, made on first use in a temporary directory
 * (removed by tp_pki_free()). Leaves are for mail.example.net and
 * pop.example.net, issued by the intermediate, unless their name says
 * otherwise.
 */
#define TP_PATH 256
struct tp_pki {
	char dir[TP_PATH];
	struct tp_cert root, inter, other_root, other_inter;
	struct tp_cert good, expired, notyet, selfsigned, unknown;
	struct tp_cert rsa1024, sha1, ip, clientonly, wildcard, partial;
	struct tp_cert client;
	char root_pem[TP_PATH];		/* CAfile: the root */
	char leaf_pem[TP_PATH];		/* CAfile: the good leaf only */
	char root_leaf_pem[TP_PATH];	/* CAfile: root and good leaf */
	char capath[TP_PATH];		/* hashed directory with the root */
	char pin_capath[TP_PATH];	/* hashed directory with the leaf */
	char empty_dir[TP_PATH];
	char garbage[TP_PATH];		/* not PEM */
	char garbage_key[TP_PATH];	/* not PEM either, mode 0600 */
	char client_pem[TP_PATH];	/* client cert */
	char client_key[TP_PATH];	/* its key, mode 0600 */
	char client_both[TP_PATH];	/* cert and key in one file, 0600 */
	char world_key[TP_PATH];	/* its key, mode 0644 */
	char enc_key[TP_PATH];		/* its key, with a passphrase */
	char other_key[TP_PATH];	/* a key that matches nothing */
	char weak_cert[TP_PATH];	/* an RSA-1024 client certificate */
};
const struct tp_pki *tp_pki(void);
void tp_pki_free(void);

struct tp_server_opts {
	const struct tp_cert *leaf;
	X509 *const *chain;	/* sent after the leaf */
	size_t nchain;
	int min_version;	/* 0: any */
	int max_version;	/* 0: any */
	int num_tickets;	/* TLS 1.3 tickets per handshake; -1: default */
	int no_cache;		/* no session IDs, no tickets */
	const char *ciphers;	/* TLS 1.2 list; NULL: all, level 0 */
	X509 *client_ca;	/* require client certificates from it */
};
/* A server context at security level 0, so that weak test certs load. */
SSL_CTX *tp_server_ctx(const struct tp_server_opts *o);

struct tp_result {
	int ok;			/* both sides finished the handshake */
	int resumed;		/* the client resumed a session */
	char reason[512];	/* the client's failure, from mt_tls_reason() */
	char sni[256];		/* the name the server saw; "" when none */
	char describe[160];	/* mt_tls_describe() of the client */
};
/*
 * Run a handshake between client (from mt_tls_ssl_new) and a new server
 * SSL from sctx over an in-memory BIO pair, then pass a little data so that
 * TLS 1.3 tickets arrive. With sctx NULL, the "server" writes raw (may be
 * "") then closes. The server sends close_notify; the client is freed
 * without, as bufferevents do. Returns r->ok.
 */
int tp_handshake(SSL *client, SSL_CTX *sctx, const char *raw,
    struct tp_result *r);

/* Config stand-ins: lines per option, and report helpers. */
#define TP_FILE "tls.conf"
unsigned tp_line(const char *option);
/* Record the lines of tp_line() in svc, as the config loader does. */
void tp_mark_lines(struct mt_service_conf *svc);
/* The first problem whose message contains needle, or NULL. */
const struct mt_config_problem *tp_report_find(
    const struct mt_config_report *report, const char *needle);

#endif
