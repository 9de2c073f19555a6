/*
 * config_tls_types: option types for TLS settings (verify, sslVersion*,
 * options). They check syntax and the security floor; tls.c gives them
 * their effect.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/http.h>
#include <openssl/ocsp.h>
#include <openssl/ssl.h>

#include "config_int.h"
#include "mailtunnel/util.h"

#define SVC(obj) ((struct mt_service_conf *)(obj))
#define CSVC(obj) ((const struct mt_service_conf *)(obj))

/*
 * stunnel's older "verify = LEVEL": 0 none, 1 and 2 the chain, 3 the chain
 * and a locally installed certificate, 4 only the local certificate.
 * verifyChain and verifyPeer print the result.
 */
static int
verify_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	static const int chain[] = { 0, 1, 1, 1, 0 };
	static const int peer[] = { 0, 0, 0, 1, 1 };
	unsigned long long level;

	if (mt_parse_uint(value, 0, 4, &level) == -1) {
		mt_opt_error(where, opt, "expected a level from 0 to 4 (or use "
		    "verifyChain and verifyPeer), not '%s'", value);
		return -1;
	}
	SVC(obj)->tls.verify_chain = chain[level];
	SVC(obj)->tls.verify_peer = peer[level];
	return 0;
}

static void
verify_reset(const struct mt_option *opt, void *obj)
{
	SVC(obj)->tls.verify_chain = 1;
	SVC(obj)->tls.verify_peer = 0;
}

const struct mt_opt_type mt_type_verify = {
	"0-4", verify_parse, verify_reset, mt_opt_nothing_copy, mt_opt_nothing_print
};

/* ---- protocol versions ---- */

enum { V_TOO_OLD = -1, V_ALL = 0 };

static const struct {
	const char *name;
	int version;
} versions[] = {
	{ "all", V_ALL },
	{ "SSLv2", V_TOO_OLD }, { "SSLv3", V_TOO_OLD },
	{ "TLSv1", V_TOO_OLD }, { "TLSv1.0", V_TOO_OLD },
	{ "TLSv1.1", V_TOO_OLD },
	{ "TLSv1.2", TLS1_2_VERSION }, { "TLSv1.3", TLS1_3_VERSION },
};

static int
version_lookup(const char *value, int *version)
{
	size_t i;

	for (i = 0; i < MT_ARRAY_LEN(versions); i++) {
		if (strcasecmp(value, versions[i].name) == 0) {
			*version = versions[i].version;
			return 0;
		}
	}
	return -1;
}

static const char *
version_name(int v)
{
	return v == TLS1_3_VERSION ? "TLSv1.3" : "TLSv1.2";
}

static int
version_value(const struct mt_option *opt, const char *value,
    const struct mt_opt_where *where, int *version)
{
	if (version_lookup(value, version) == -1) {
		mt_opt_error(where, opt, "expected all, TLSv1.2 or TLSv1.3, "
		    "not '%s'", value);
		return -1;
	}
	if (*version == V_TOO_OLD)
		mt_opt_warning(where, opt, "%s is refused by every current mail "
		    "server and by OpenSSL 3; TLS 1.2 is the floor, so TLS 1.2 "
		    "and newer will be used", value);
	return 0;
}

/* sslVersion pins one version; too old ones fall back to "1.2 and newer". */
static int
ssl_version_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	struct mt_tls_conf *tls = &SVC(obj)->tls;
	int v;

	if (version_value(opt, value, where, &v) == -1)
		return -1;
	if (v == V_TOO_OLD || v == V_ALL) {
		tls->version_min = TLS1_2_VERSION;
		tls->version_max = 0;
	} else {
		tls->version_min = v;
		tls->version_max = v;
	}
	return 0;
}

static void
ssl_version_reset(const struct mt_option *opt, void *obj)
{
	SVC(obj)->tls.version_min = TLS1_2_VERSION;
	SVC(obj)->tls.version_max = 0;
}

const struct mt_opt_type mt_type_ssl_version = {
	"all|TLSv1.2|TLSv1.3", ssl_version_parse, ssl_version_reset,
	mt_opt_nothing_copy, mt_opt_nothing_print
};

static int
ssl_version_min_parse(const struct mt_option *opt, void *obj,
    const char *value, const struct mt_opt_where *where)
{
	int v;

	if (version_value(opt, value, where, &v) == -1)
		return -1;
	SVC(obj)->tls.version_min = (v > 0) ? v : TLS1_2_VERSION;
	return 0;
}

static void
ssl_version_min_reset(const struct mt_option *opt, void *obj)
{
	SVC(obj)->tls.version_min = TLS1_2_VERSION;
}

static int
ssl_version_min_copy(const struct mt_option *opt, void *dst, const void *src)
{
	SVC(dst)->tls.version_min = CSVC(src)->tls.version_min;
	return 0;
}

static void
ssl_version_min_print(const struct mt_option *opt, const void *obj, FILE *out)
{
	fprintf(out, "%s = %s\n", opt->name,
	    version_name(CSVC(obj)->tls.version_min));
}

const struct mt_opt_type mt_type_ssl_version_min = {
	"all|TLSv1.2|TLSv1.3", ssl_version_min_parse, ssl_version_min_reset,
	ssl_version_min_copy, ssl_version_min_print
};

static int
ssl_version_max_parse(const struct mt_option *opt, void *obj,
    const char *value, const struct mt_opt_where *where)
{
	int v;

	if (version_lookup(value, &v) == -1) {
		mt_opt_error(where, opt, "expected all, TLSv1.2 or TLSv1.3, "
		    "not '%s'", value);
		return -1;
	}
	if (v == V_TOO_OLD) {
		mt_opt_error(where, opt, "%s is below TLS 1.2, the oldest "
		    "version mailtunnel speaks; use all, TLSv1.2 or TLSv1.3",
		    value);
		return -1;
	}
	SVC(obj)->tls.version_max = v;
	return 0;
}

static void
ssl_version_max_reset(const struct mt_option *opt, void *obj)
{
	SVC(obj)->tls.version_max = 0;
}

static int
ssl_version_max_copy(const struct mt_option *opt, void *dst, const void *src)
{
	SVC(dst)->tls.version_max = CSVC(src)->tls.version_max;
	return 0;
}

static void
ssl_version_max_print(const struct mt_option *opt, const void *obj, FILE *out)
{
	int v = CSVC(obj)->tls.version_max;

	fprintf(out, "%s = %s\n", opt->name, v ? version_name(v) : "all");
}

const struct mt_opt_type mt_type_ssl_version_max = {
	"all|TLSv1.2|TLSv1.3", ssl_version_max_parse, ssl_version_max_reset,
	ssl_version_max_copy, ssl_version_max_print
};

/* ---- options = [-]SSL_OP_NAME ---- */

static const struct {
	const char *name;
	uint64_t bit;
} ssl_ops[] = {
	{ "ALL", SSL_OP_ALL },
	{ "NO_SSLv2", 0 },	/* SSLv2 no longer exists: always off */
	{ "NO_SSLv3", SSL_OP_NO_SSLv3 },
	{ "NO_TLSv1", SSL_OP_NO_TLSv1 },
	{ "NO_TLSv1.1", SSL_OP_NO_TLSv1_1 },
	{ "NO_TLSv1_1", SSL_OP_NO_TLSv1_1 },
	{ "NO_TLSv1.2", SSL_OP_NO_TLSv1_2 },
	{ "NO_TLSv1_2", SSL_OP_NO_TLSv1_2 },
	{ "NO_TLSv1.3", SSL_OP_NO_TLSv1_3 },
	{ "NO_TLSv1_3", SSL_OP_NO_TLSv1_3 },
	{ "NO_TICKET", SSL_OP_NO_TICKET },
	{ "NO_COMPRESSION", SSL_OP_NO_COMPRESSION },
	{ "NO_RENEGOTIATION", SSL_OP_NO_RENEGOTIATION },
	{ "NO_ENCRYPT_THEN_MAC", SSL_OP_NO_ENCRYPT_THEN_MAC },
	{ "NO_EXTENDED_MASTER_SECRET", SSL_OP_NO_EXTENDED_MASTER_SECRET },
	{ "CIPHER_SERVER_PREFERENCE", SSL_OP_CIPHER_SERVER_PREFERENCE },
	{ "PRIORITIZE_CHACHA", SSL_OP_PRIORITIZE_CHACHA },
	{ "ENABLE_MIDDLEBOX_COMPAT", SSL_OP_ENABLE_MIDDLEBOX_COMPAT },
	{ "DONT_INSERT_EMPTY_FRAGMENTS", SSL_OP_DONT_INSERT_EMPTY_FRAGMENTS },
	{ "TLSEXT_PADDING", SSL_OP_TLSEXT_PADDING },
	{ "SAFARI_ECDHE_ECDSA_BUG", SSL_OP_SAFARI_ECDHE_ECDSA_BUG },
	{ "LEGACY_SERVER_CONNECT", SSL_OP_LEGACY_SERVER_CONNECT },
	{ "IGNORE_UNEXPECTED_EOF", SSL_OP_IGNORE_UNEXPECTED_EOF },
	{ "ENABLE_KTLS", SSL_OP_ENABLE_KTLS },
	{ "CLEANSE_PLAINTEXT", SSL_OP_CLEANSE_PLAINTEXT },
	{ "SINGLE_DH_USE", 0 },	/* always on in OpenSSL 3 */
	{ "SINGLE_ECDH_USE", 0 },
};

static int
ssl_options_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	struct mt_tls_conf *tls = &SVC(obj)->tls;
	const char *name = value;
	int off = 0;
	size_t i;

	if (*name == '-') {
		off = 1;
		name++;
	}
	if (mt_str_has_prefix_ci(name, "SSL_OP_"))
		name += 7;
	for (i = 0; i < MT_ARRAY_LEN(ssl_ops); i++) {
		if (strcasecmp(name, ssl_ops[i].name) != 0)
			continue;
		if (off) {
			tls->options_off |= ssl_ops[i].bit;
			tls->options_on &= ~ssl_ops[i].bit;
		} else {
			tls->options_on |= ssl_ops[i].bit;
			tls->options_off &= ~ssl_ops[i].bit;
		}
		return 0;
	}
	mt_opt_error(where, opt, "unknown TLS option '%s' (for example "
	    "NO_TICKET, NO_COMPRESSION, NO_TLSv1.3, -NO_TICKET)", value);
	return -1;
}

static void
ssl_options_reset(const struct mt_option *opt, void *obj)
{
	SVC(obj)->tls.options_on = 0;
	SVC(obj)->tls.options_off = 0;
}

static int
ssl_options_copy(const struct mt_option *opt, void *dst, const void *src)
{
	SVC(dst)->tls.options_on = CSVC(src)->tls.options_on;
	SVC(dst)->tls.options_off = CSVC(src)->tls.options_off;
	return 0;
}

static void
ssl_options_print(const struct mt_option *opt, const void *obj, FILE *out)
{
	const struct mt_tls_conf *tls = &CSVC(obj)->tls;
	size_t i;

	for (i = 0; i < MT_ARRAY_LEN(ssl_ops); i++) {
		uint64_t bit = ssl_ops[i].bit;

		/* Print each bit once, under its first name. */
		if (bit == 0 || (i > 0 && ssl_ops[i - 1].bit == bit))
			continue;
		if ((tls->options_on & bit) == bit)
			fprintf(out, "%s = %s\n", opt->name, ssl_ops[i].name);
		else if ((tls->options_off & bit) == bit)
			fprintf(out, "%s = -%s\n", opt->name, ssl_ops[i].name);
	}
}

const struct mt_opt_type mt_type_ssl_options = {
	"[-]NAME", ssl_options_parse, ssl_options_reset, ssl_options_copy,
	ssl_options_print
};

/*
 * OCSP = URL: a plain http:// responder (its answers are signed; RFC 6960
 * responders do not speak TLS, and asking one over TLS would need its own
 * revocation check).
 */
static int
ocsp_url_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	char *host = NULL;
	int tls = 0, ok;

	ok = OSSL_HTTP_parse_url(value, &tls, NULL, &host, NULL, NULL, NULL,
	    NULL, NULL);
	ERR_clear_error();
	OPENSSL_free(host);
	if (!ok || tls || strncasecmp(value, "http://", 7) != 0) {
		mt_opt_error(where, opt, "expected an http:// URL such as "
		    "http://ocsp.example.net/, not '%s'%s", value, tls ?
		    " (OCSP responders answer over plain HTTP; their answers "
		    "are signed)" : "");
		return -1;
	}
	return mt_opt_set_string(opt, obj, value, where);
}

const struct mt_opt_type mt_type_ocsp_url = {
	"URL", ocsp_url_parse, mt_opt_string_reset, mt_opt_string_copy,
	mt_opt_string_print
};

/*
 * OCSPflag = NAME, repeatable: OCSP_basic_verify() flags. Flags that only
 * shape a responder's own answers, and two that OpenSSL defines but never
 * reads, are refused rather than ignored.
 */
static const struct {
	const char *name;
	unsigned long flag;
	const char *weakens;		/* non-NULL: what is no longer checked */
} ocsp_flags[] = {
	{ "NOINTERN", OCSP_NOINTERN, NULL },
	{ "NOSIGS", OCSP_NOSIGS, "the responses' signatures" },
	{ "NOCHAIN", OCSP_NOCHAIN, "the responder certificate's chain" },
	{ "NOVERIFY", OCSP_NOVERIFY, "who signed the responses" },
	{ "NOEXPLICIT", OCSP_NOEXPLICIT, "the responder's trust for OCSP "
	    "signing" },
	{ "NOCHECKS", OCSP_NOCHECKS, "whether the signer may answer for the "
	    "issuer" },
	{ "TRUSTOTHER", OCSP_TRUSTOTHER, NULL },
};

static int
ocsp_flag_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	size_t i;

	for (i = 0; i < MT_ARRAY_LEN(ocsp_flags); i++) {
		if (strcasecmp(value, ocsp_flags[i].name) != 0)
			continue;
		*FIELD(obj, opt, unsigned long long) |= ocsp_flags[i].flag;
		if (ocsp_flags[i].weakens != NULL)
			mt_opt_warning(where, opt, "%s: OCSP answers are taken "
			    "without checking %s", ocsp_flags[i].name,
			    ocsp_flags[i].weakens);
		return 0;
	}
	if (strcasecmp(value, "NOCERTS") == 0 ||
	    strcasecmp(value, "RESPID_KEY") == 0 ||
	    strcasecmp(value, "NOTIME") == 0)
		mt_opt_error(where, opt, "%s shapes a responder's own answers; "
		    "it means nothing when checking them", value);
	else if (strcasecmp(value, "NOCASIGN") == 0 ||
	    strcasecmp(value, "NODELEGATED") == 0)
		mt_opt_error(where, opt, "%s is defined by OpenSSL but has no "
		    "effect in it; remove it", value);
	else
		mt_opt_error(where, opt, "unknown flag '%s' (NOINTERN, NOSIGS, "
		    "NOCHAIN, NOVERIFY, NOEXPLICIT, NOCHECKS, TRUSTOTHER)",
		    value);
	return -1;
}

static void
ocsp_flag_print(const struct mt_option *opt, const void *obj, FILE *out)
{
	size_t i;

	for (i = 0; i < MT_ARRAY_LEN(ocsp_flags); i++)
		if (*CFIELD(obj, opt, unsigned long long) & ocsp_flags[i].flag)
			fprintf(out, "%s = %s\n", opt->name,
			    ocsp_flags[i].name);
}

const struct mt_opt_type mt_type_ocsp_flag = {
	"FLAG", ocsp_flag_parse, mt_opt_ull_reset, mt_opt_ull_copy,
	ocsp_flag_print
};
