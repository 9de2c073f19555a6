/*
 * libFuzzer harness for fetch URLs.
 *
 * Input: a URL. A parsed URL must render back to a string that parses to
 * the same struct, its decoded names must hold no control characters, and
 * rendering into any buffer size must stay inside it. A refused URL must
 * come with a message, and one with a password must not quote it.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailtunnel/fetch_url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static void
no_controls(const char *s, size_t size)
{
	CHECK(memchr(s, '\0', size) != NULL);
	for (; *s != '\0'; s++)
		CHECK((unsigned char)*s >= 0x20 && *s != 0x7f);
}

static void
parsed(const struct mt_fetch_url *u, size_t cut)
{
	struct mt_fetch_url v;
	char buf[4096], small[64], err[256];

	no_controls(u->user, sizeof(u->user));
	no_controls(u->mailbox, sizeof(u->mailbox));
	CHECK(u->user[0] != '\0' && u->host[0] != '\0');
	CHECK(u->port >= 1 && u->port <= 65535);
	CHECK(u->proto == MT_FETCH_IMAP || u->mailbox[0] == '\0');
	mt_fetch_url_format(u, buf, sizeof(buf));
	if (mt_fetch_url_parse(buf, &v, err, sizeof(err)) != 0)
		abort();
	CHECK(memcmp(u, &v, sizeof(v)) == 0);
	/* A short buffer holds a NUL-terminated prefix of the whole. */
	cut = cut % sizeof(small) + 1;
	memset(small, 'X', sizeof(small));
	mt_fetch_url_format(u, small, cut);
	CHECK(memchr(small, '\0', cut) != NULL);
	CHECK(strncmp(small, buf, strlen(small)) == 0);
	CHECK(cut == sizeof(small) || small[cut] == 'X');
}

/*
 * "scheme://user:SECRET@host": SECRET must not be in the message. Only
 * secrets with a digit and an upper-case letter are checked, so a secret
 * that happens to be a piece of a fixed message is not a false alarm.
 */
static void
secret_not_quoted(char *s, const char *err)
{
	char *auth = strstr(s, "://"), *end, *at = NULL, *colon, *p;
	int digit = 0, upper = 0;

	if (auth == NULL || strlen(s) > MT_FETCH_URL_MAX)
		return;
	auth += 3;
	end = auth + strcspn(auth, "/");
	for (p = auth; p < end; p++) {
		if (*p == '@')
			at = p;
	}
	if (at == NULL || (colon = memchr(auth, ':', (size_t)(at - auth))) == NULL)
		return;
	for (p = colon + 1; p < at; p++) {
		digit |= *p >= '0' && *p <= '9';
		upper |= *p >= 'A' && *p <= 'Z';
	}
	if (at - colon <= 8 || !digit || !upper)
		return;
	*at = '\0';
	CHECK(strstr(err, colon + 1) == NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mt_fetch_url u;
	char *s, err[256];

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (mt_fetch_url_parse(s, &u, err, sizeof(err)) == 0) {
		parsed(&u, size);
	} else {
		CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
		secret_not_quoted(s, err);
	}
	free(s);
	return 0;
}
