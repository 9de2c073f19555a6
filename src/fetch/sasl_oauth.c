/*
 * fetch/sasl_oauth: read the JSON error a server sends when it refuses an
 * OAuth token (XOAUTH2, RFC 7628 OAUTHBEARER). A small strict JSON reader
 * that keeps two top-level fields and skips everything else, with caps on
 * size and nesting so a hostile server cannot make it work hard.
 */
#include "config.h"

#include <string.h>

#include <openssl/crypto.h>

#include "mailtunnel/sasl.h"

#define CHALLENGE_MAX 4096		/* decoded bytes */
#define DEPTH_MAX 16

struct json {
	const unsigned char *p, *end;
	int depth;
};

static void
skip_ws(struct json *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' ||
	    *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

/* Append one byte to a capture, as printable ASCII, truncating. */
static void
put(char *dst, size_t dstsz, size_t *n, unsigned c)
{
	if (dst == NULL || *n + 1 >= dstsz)
		return;
	dst[(*n)++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	dst[*n] = '\0';
}

static int
hex4(const unsigned char *p)
{
	int i, v = 0;

	for (i = 0; i < 4; i++) {
		unsigned char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/* A string at j->p (after skip_ws); copied to dst when dst is not NULL. */
static int
json_string(struct json *j, char *dst, size_t dstsz)
{
	static const char esc_in[] = "\"\\/bfnrt", esc_out[] = "\"\\/\b\f\n\r\t";
	size_t n = 0;
	const char *e;

	if (j->p >= j->end || *j->p != '"')
		return -1;
	for (j->p++; j->p < j->end && *j->p != '"'; j->p++) {
		if (*j->p < 0x20)
			return -1;
		if (*j->p != '\\') {
			put(dst, dstsz, &n, *j->p);
			continue;
		}
		if (++j->p >= j->end)
			return -1;
		if (*j->p == 'u') {
			if (j->end - j->p < 5 || hex4(j->p + 1) < 0)
				return -1;
			put(dst, dstsz, &n, (unsigned)hex4(j->p + 1));
			j->p += 4;
		} else if ((e = strchr(esc_in, *j->p)) != NULL && *j->p != '\0') {
			put(dst, dstsz, &n, (unsigned char)esc_out[e - esc_in]);
		} else {
			return -1;
		}
	}
	if (j->p >= j->end)
		return -1;
	j->p++;
	return 0;
}

/* Numbers and the three literals, loosely: a run of their characters. */
static int
json_scalar(struct json *j, char *dst, size_t dstsz)
{
	static const char chars[] = "0123456789+-.eEtrufalsn";
	size_t n = 0;
	const unsigned char *start = j->p;

	while (j->p < j->end && *j->p != '\0' && strchr(chars, *j->p) != NULL)
		put(dst, dstsz, &n, *j->p++);
	return j->p > start ? 0 : -1;
}

static int json_value(struct json *j, char *dst, size_t dstsz);

static int
json_array(struct json *j)
{
	j->p++;
	skip_ws(j);
	if (j->p < j->end && *j->p == ']') {
		j->p++;
		return 0;
	}
	for (;;) {
		if (json_value(j, NULL, 0) == -1)
			return -1;
		skip_ws(j);
		if (j->p >= j->end)
			return -1;
		if (*j->p++ == ']')
			return 0;
		if (j->p[-1] != ',')
			return -1;
	}
}

/*
 * An object; at depth 0 the values of "status" and "scope" are captured
 * into out (dst carries out through the recursion, NULL below the top).
 */
static int
json_object(struct json *j, struct mt_sasl_oauth_error *out)
{
	char key[16];

	j->p++;
	skip_ws(j);
	if (j->p < j->end && *j->p == '}') {
		j->p++;
		return 0;
	}
	for (;;) {
		key[0] = '\0';
		skip_ws(j);
		if (json_string(j, key, sizeof(key)) == -1)
			return -1;
		skip_ws(j);
		if (j->p >= j->end || *j->p++ != ':')
			return -1;
		if (out != NULL && strcmp(key, "status") == 0) {
			out->status[0] = '\0';
			if (json_value(j, out->status, sizeof(out->status)) == -1)
				return -1;
		} else if (out != NULL && strcmp(key, "scope") == 0) {
			out->scope[0] = '\0';
			if (json_value(j, out->scope, sizeof(out->scope)) == -1)
				return -1;
		} else if (json_value(j, NULL, 0) == -1) {
			return -1;
		}
		skip_ws(j);
		if (j->p >= j->end)
			return -1;
		if (*j->p++ == '}')
			return 0;
		if (j->p[-1] != ',')
			return -1;
	}
}

static int
json_value(struct json *j, char *dst, size_t dstsz)
{
	int rc;

	skip_ws(j);
	if (j->p >= j->end)
		return -1;
	if (*j->p == '"')
		return json_string(j, dst, dstsz);
	if (*j->p != '{' && *j->p != '[')
		return json_scalar(j, dst, dstsz);
	if (++j->depth > DEPTH_MAX)
		return -1;
	rc = (*j->p == '{') ? json_object(j, NULL) : json_array(j);
	j->depth--;
	return rc;
}

int
mt_sasl_oauth_error_parse(const char *b64, size_t len,
    struct mt_sasl_oauth_error *out, const char **why)
{
	unsigned char buf[CHALLENGE_MAX];
	struct json j;
	size_t n;
	int rc = -1;
	size_t pad = (len >= 1 && b64[len - 1] == '=') +
	    (len >= 2 && b64[len - 2] == '=');

	out->status[0] = '\0';
	out->scope[0] = '\0';
	if (len / 4 * 3 > CHALLENGE_MAX + pad) {
		*why = "the error challenge is longer than 4096 bytes";
		return -1;
	}
	if (mt_sasl_b64_decode(b64, len, buf, sizeof(buf), &n, why) == -1) {
		*why = "the error challenge is not valid base64";
		return -1;
	}
	j.p = buf;
	j.end = buf + n;
	j.depth = 0;
	skip_ws(&j);
	if (j.p >= j.end || *j.p != '{' || json_object(&j, out) == -1)
		goto bad;
	skip_ws(&j);
	if (j.p != j.end)
		goto bad;
	rc = 0;
	goto done;
bad:
	*why = "the error challenge is not a JSON object";
	out->status[0] = '\0';
	out->scope[0] = '\0';
done:
	OPENSSL_cleanse(buf, n);
	return rc;
}
