/*
 * fetch/sasl: mechanism names, base64 and the initial responses of the
 * mechanisms the fetch clients speak. See include/mailtunnel/sasl.h.
 */
#include "config.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "mailtunnel/sasl.h"
#include "mailtunnel/util.h"

/* Caps on what we agree to encode: far above real credentials. */
#define FIELD_MAX 1024			/* user names, passwords, hosts */
#define TOKEN_MAX 16384			/* OAuth access tokens (JWTs run long) */

static const struct {
	const char *name;
	unsigned bit;
} mechs[] = {
	{ "PLAIN", MT_SASL_PLAIN },
	{ "LOGIN", MT_SASL_LOGIN },
	{ "XOAUTH2", MT_SASL_XOAUTH2 },
	{ "OAUTHBEARER", MT_SASL_OAUTHBEARER },
	{ "CRAM-MD5", MT_SASL_CRAM_MD5 },
	{ "SCRAM-SHA-1", MT_SASL_SCRAM_SHA_1 },
	{ "SCRAM-SHA-256", MT_SASL_SCRAM_SHA_256 },
	{ "EXTERNAL", MT_SASL_EXTERNAL },
	{ "GSSAPI", MT_SASL_GSSAPI },
	{ "NTLM", MT_SASL_NTLM },
	{ "ANONYMOUS", MT_SASL_ANONYMOUS },
};

unsigned
mt_sasl_mech_bit(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < MT_ARRAY_LEN(mechs); i++) {
		if (strlen(mechs[i].name) == len &&
		    strncasecmp(mechs[i].name, name, len) == 0)
			return mechs[i].bit;
	}
	return 0;
}

const char *
mt_sasl_mech_name(unsigned bit)
{
	size_t i;

	for (i = 0; i < MT_ARRAY_LEN(mechs); i++) {
		if (mechs[i].bit == bit)
			return mechs[i].name;
	}
	return NULL;
}

int
mt_sasl_mech_name_valid(const char *name, size_t len)
{
	size_t i;

	if (len == 0 || len > 20)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!isalnum(c) && c != '-' && c != '_')
			return 0;
	}
	return 1;
}

int
mt_sasl_b64_encode(const void *in, size_t inlen, char *out, size_t outsz,
    size_t *outlen, const char **why)
{
	int n;

	if (inlen > (size_t)INT_MAX / 2) {
		*why = "data too large to encode";
		return -1;
	}
	if (outsz < MT_SASL_B64_LEN(inlen) + 1) {
		*why = "base64 output buffer too small";
		return -1;
	}
	n = EVP_EncodeBlock((unsigned char *)out, in, (int)inlen);
	*outlen = (size_t)n;
	return 0;
}

/* 0-63 for a base64 digit, -1 otherwise. */
static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decode one 4-character group; returns the byte count (1-3) or -1. */
static int
b64_quad(const char *q, int last, unsigned char b[3])
{
	int v[4], i, pad = 0;

	for (i = 0; i < 4; i++) {
		if (q[i] == '=' && last && i >= 2) {
			pad++;
			v[i] = 0;
			continue;
		}
		if (pad > 0 || (v[i] = b64_value((unsigned char)q[i])) < 0)
			return -1;
	}
	/* Canonical form only: the bits that padding drops must be zero. */
	if ((pad == 1 && (v[2] & 0x3) != 0) || (pad == 2 && (v[1] & 0xf) != 0))
		return -1;
	b[0] = (unsigned char)(v[0] << 2 | v[1] >> 4);
	b[1] = (unsigned char)((v[1] & 0xf) << 4 | v[2] >> 2);
	b[2] = (unsigned char)((v[2] & 0x3) << 6 | v[3]);
	return 3 - pad;
}

int
mt_sasl_b64_decode(const char *in, size_t inlen, void *out, size_t outsz,
    size_t *outlen, const char **why)
{
	unsigned char b[3], *o = out;
	size_t i, n = 0;
	int k, rc = -1;

	if (inlen % 4 != 0) {
		*why = "base64 length is not a multiple of 4";
		return -1;
	}
	for (i = 0; i < inlen; i += 4) {
		/* Decoded bytes may be a secret: leave none on the stack. */
		if ((k = b64_quad(in + i, i + 4 == inlen, b)) < 0) {
			*why = "invalid base64";
			goto done;
		}
		if (outsz - n < (size_t)k) {
			*why = "decoded base64 too large";
			goto done;
		}
		memcpy(o + n, b, (size_t)k);
		n += (size_t)k;
	}
	*outlen = n;
	rc = 0;
done:
	OPENSSL_cleanse(b, sizeof(b));
	return rc;
}

void
mt_sasl_free(char *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

/* Base64 of raw[0..len) into a fresh string; raw is wiped and freed. */
static char *
encode_and_wipe(char *raw, size_t len, const char **why)
{
	size_t sz = MT_SASL_B64_LEN(len) + 1, n;
	char *out;

	if ((out = malloc(sz)) == NULL) {
		*why = "out of memory";
		goto err0;
	}
	if (mt_sasl_b64_encode(raw, len, out, sz, &n, why) == -1)
		goto err1;
	OPENSSL_cleanse(raw, len);
	free(raw);

	/* Success! */
	return out;

err1:
	free(out);
err0:
	OPENSSL_cleanse(raw, len);
	free(raw);
	return NULL;
}

/*
 * RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" )
 * *"=". Checking it catches a token file with a stray newline or quotes.
 */
static int
token_check(const char *token, const char **why)
{
	size_t i, len = strlen(token);

	if (len == 0) {
		*why = "the OAuth access token is empty";
		return -1;
	}
	if (len > TOKEN_MAX) {
		*why = "the OAuth access token is longer than 16384 bytes";
		return -1;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)token[i];
		if (c < 0x80 && (isalnum(c) || strchr("-._~+/", c) != NULL))
			continue;
		if (c == '=' && i > 0 && strspn(token + i, "=") == len - i)
			break;
		*why = "the OAuth access token has a character a bearer token "
		    "cannot contain (whitespace, quotes or a line break?)";
		return -1;
	}
	return 0;
}

static int
user_check(const char *user, const char **why)
{
	size_t len = strlen(user);

	if (len == 0) {
		*why = "the user name is empty";
		return -1;
	}
	if (len > FIELD_MAX) {
		*why = "the user name is longer than 1024 bytes";
		return -1;
	}
	if (strchr(user, '\x01') != NULL) {
		*why = "the user name contains a ^A byte";
		return -1;
	}
	return 0;
}

char *
mt_sasl_plain(const char *user, const char *password, const char **why)
{
	size_t ul, pl, len;
	char *raw;

	if (user_check(user, why) == -1)
		return NULL;
	ul = strlen(user);
	if ((pl = strlen(password)) > FIELD_MAX) {
		*why = "the password is longer than 1024 bytes";
		return NULL;
	}
	/* authzid (empty) NUL authcid NUL passwd */
	len = 1 + ul + 1 + pl;
	if ((raw = malloc(len)) == NULL) {
		*why = "out of memory";
		return NULL;
	}
	raw[0] = '\0';
	memcpy(raw + 1, user, ul);
	raw[1 + ul] = '\0';
	memcpy(raw + 2 + ul, password, pl);
	return encode_and_wipe(raw, len, why);
}

char *
mt_sasl_xoauth2(const char *user, const char *token, const char **why)
{
	size_t len;
	char *raw;
	int n;

	if (user_check(user, why) == -1 || token_check(token, why) == -1)
		return NULL;
	len = strlen("user=\001auth=Bearer \001\001") + strlen(user) +
	    strlen(token);
	if ((raw = malloc(len + 1)) == NULL) {
		*why = "out of memory";
		return NULL;
	}
	n = snprintf(raw, len + 1, "user=%s\001auth=Bearer %s\001\001", user,
	    token);
	if (n < 0 || (size_t)n != len) {
		*why = "internal error building XOAUTH2";
		OPENSSL_cleanse(raw, len + 1);
		free(raw);
		return NULL;
	}
	return encode_and_wipe(raw, len, why);
}

/* RFC 5801 saslname: ',' and '=' are written =2C and =3D. */
static size_t
gs2_escape(const char *user, char *out)
{
	size_t n = 0;

	for (; *user != '\0'; user++) {
		if (*user == ',' || *user == '=') {
			if (out != NULL)
				memcpy(out + n, *user == ',' ? "=2C" : "=3D", 3);
			n += 3;
		} else {
			if (out != NULL)
				out[n] = *user;
			n++;
		}
	}
	return n;
}

static int
host_check(const char *host, const char **why)
{
	size_t i, len = strlen(host);

	if (len > FIELD_MAX) {
		*why = "the host name is longer than 1024 bytes";
		return -1;
	}
	for (i = 0; i < len; i++) {
		if ((unsigned char)host[i] <= 0x20 || host[i] == 0x7f) {
			*why = "the host name contains a control character or space";
			return -1;
		}
	}
	return 0;
}

char *
mt_sasl_oauthbearer(const char *user, const char *host, unsigned port,
    const char *token, const char **why)
{
	char portbuf[24] = "", *raw;
	size_t ulen, len, n;

	if (user_check(user, why) == -1 || token_check(token, why) == -1)
		return NULL;
	if (host != NULL && host_check(host, why) == -1)
		return NULL;
	if (port > 65535) {
		*why = "the port is not between 1 and 65535";
		return NULL;
	}
	if (port != 0)
		snprintf(portbuf, sizeof(portbuf), "port=%u\001", port);
	ulen = gs2_escape(user, NULL);
	len = strlen("n,a=,\001") + ulen + strlen(portbuf) +
	    strlen("auth=Bearer \001\001") + strlen(token);
	if (host != NULL)
		len += strlen("host=\001") + strlen(host);
	if ((raw = malloc(len + 1)) == NULL) {
		*why = "out of memory";
		return NULL;
	}
	memcpy(raw, "n,a=", 4);
	gs2_escape(user, raw + 4);
	n = 4 + ulen;
	n += (size_t)snprintf(raw + n, len + 1 - n, ",\001%s%s%s%sauth=Bearer %s"
	    "\001\001", host != NULL ? "host=" : "", host != NULL ? host : "",
	    host != NULL ? "\001" : "", portbuf, token);
	return encode_and_wipe(raw, n, why);
}
