/*
 * libFuzzer harness for the SASL helpers: base64 both ways (decoding
 * accepts only canonical text, so decode-then-encode must give the input
 * back), the OAuth error challenge reader on arbitrary JSON-ish text, and
 * the builders on arbitrary credentials.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailtunnel/sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)
#define MAXIN 8192

static void
base64_both_ways(const char *in, size_t n)
{
	static char enc[MT_SASL_B64_LEN(MAXIN) + 1];
	static unsigned char dec[MAXIN];
	size_t elen, dlen;
	const char *why;

	if (mt_sasl_b64_decode(in, n, dec, sizeof(dec), &dlen, &why) == 0) {
		CHECK(mt_sasl_b64_encode(dec, dlen, enc, sizeof(enc), &elen,
		    &why) == 0);
		CHECK(elen == n && memcmp(enc, in, n) == 0);
	}
	CHECK(mt_sasl_b64_encode(in, n, enc, sizeof(enc), &elen, &why) == 0);
	CHECK(elen == MT_SASL_B64_LEN(n) && enc[elen] == '\0');
	CHECK(mt_sasl_b64_decode(enc, elen, dec, sizeof(dec), &dlen, &why) == 0);
	CHECK(dlen == n && memcmp(dec, in, n) == 0);
}

static void
printable(const char *s, size_t size)
{
	CHECK(memchr(s, '\0', size) != NULL);
	for (; *s != '\0'; s++)
		CHECK(*s >= 0x20 && *s < 0x7f);
}

static void
oauth_error(const char *in, size_t n)
{
	static char enc[MT_SASL_B64_LEN(MAXIN) + 1];
	struct mt_sasl_oauth_error e;
	const char *why = NULL;
	size_t elen;

	CHECK(mt_sasl_b64_encode(in, n, enc, sizeof(enc), &elen, &why) == 0);
	if (mt_sasl_oauth_error_parse(enc, elen, &e, &why) == -1)
		CHECK(why != NULL && e.status[0] == '\0');
	printable(e.status, sizeof(e.status));
	printable(e.scope, sizeof(e.scope));
}

/* user NUL secret: every builder either fails with a reason or encodes. */
static void
builders(const char *in, size_t n)
{
	char *copy = malloc(n + 2), *secret, *s;
	unsigned char raw[MAXIN * 2];
	const char *why;
	size_t len, ul;

	CHECK(copy != NULL);
	memcpy(copy, in, n);
	copy[n] = copy[n + 1] = '\0';
	ul = strlen(copy);
	secret = copy + ul + 1;
	why = NULL;
	if ((s = mt_sasl_plain(copy, secret, &why)) != NULL) {
		CHECK(mt_sasl_b64_decode(s, strlen(s), raw, sizeof(raw), &len,
		    &why) == 0);
		CHECK(len == 2 + ul + strlen(secret) && raw[0] == '\0');
		CHECK(memcmp(raw + 1, copy, ul) == 0 && raw[1 + ul] == '\0');
		mt_sasl_free(s);
	} else {
		CHECK(why != NULL);
	}
	why = NULL;
	if ((s = mt_sasl_xoauth2(copy, secret, &why)) != NULL)
		mt_sasl_free(s);
	else
		CHECK(why != NULL);
	why = NULL;
	if ((s = mt_sasl_oauthbearer(copy, "imap.example.com", 993, secret,
	    &why)) != NULL)
		mt_sasl_free(s);
	else
		CHECK(why != NULL);
	free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;

	if (size > MAXIN)
		return 0;
	base64_both_ways(in, size);
	oauth_error(in, size);
	builders(in, size);
	return 0;
}
