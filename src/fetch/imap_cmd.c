/*
 * imap_cmd: see imap_cmd.h.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "fetch/fetch_int.h"
#include "fetch/imap_cmd.h"

size_t
ft_imap_uid_set(char *buf, size_t size, const uint32_t *uids, size_t n)
{
	size_t i = 0, j, len = 0, done = 0;
	char part[32];
	int k;

	if (size > 0)
		buf[0] = '\0';
	while (i < n) {
		for (j = i; j + 1 < n && uids[j + 1] == uids[j] + 1; j++)
			;
		if (j == i)
			k = snprintf(part, sizeof(part), "%s%" PRIu32,
			    len > 0 ? "," : "", uids[i]);
		else
			k = snprintf(part, sizeof(part), "%s%" PRIu32 ":%" PRIu32,
			    len > 0 ? "," : "", uids[i], uids[j]);
		if (len + (size_t)k + 1 > size)
			break;
		memcpy(buf + len, part, (size_t)k + 1);
		len += (size_t)k;
		done = j + 1;
		i = j + 1;
	}
	return done;
}

size_t
ft_imap_range_set(char *buf, size_t size, const struct ft_range *r, size_t n)
{
	size_t i, len = 0;
	char part[32];
	int k;

	if (size > 0)
		buf[0] = '\0';
	for (i = 0; i < n; i++) {
		if (r[i].lo == 0)
			continue;
		if (r[i].lo == r[i].hi)
			k = snprintf(part, sizeof(part), "%s%" PRIu32,
			    len > 0 ? "," : "", r[i].lo);
		else
			k = snprintf(part, sizeof(part), "%s%" PRIu32 ":%" PRIu32,
			    len > 0 ? "," : "", r[i].lo, r[i].hi);
		if (len + (size_t)k + 1 > size)
			break;
		memcpy(buf + len, part, (size_t)k + 1);
		len += (size_t)k;
	}
	return i;
}

int
ft_imap_quote(char *buf, size_t size, const char *s)
{
	size_t n = 0;

	if (size < 3)
		return -1;
	buf[n++] = '"';
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\r' || c == '\n' || c >= 0x80)
			return -1;
		if (n + 4 > size)
			return -1;
		if (c == '"' || c == '\\')
			buf[n++] = '\\';
		buf[n++] = (char)c;
	}
	buf[n++] = '"';
	buf[n] = '\0';
	return 0;
}

/* Decode one UTF-8 sequence at s; its length, or 0 when invalid. */
static size_t
utf8_next(const unsigned char *s, uint32_t *cp)
{
	size_t len, i;
	uint32_t v;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2;
		v = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		v = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4;
		v = s[0] & 0x07;
	} else {
		return 0;
	}
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and beyond U+10FFFF are invalid. */
	if ((len == 2 && v < 0x80) || (len == 3 && v < 0x800) ||
	    (len == 4 && v < 0x10000) || v > 0x10ffff ||
	    (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

struct out {
	char *buf;
	size_t size, n;
	uint32_t bits;
	unsigned nbits;
};

static int
put(struct out *o, char c)
{
	if (o->n + 2 > o->size)		/* room for the closing quote */
		return -1;
	o->buf[o->n++] = c;
	return 0;
}

/* One UTF-16 unit into the base64 run. */
static int
put16(struct out *o, uint32_t u)
{
	o->bits = o->bits << 16 | u;
	o->nbits += 16;
	while (o->nbits >= 6) {
		o->nbits -= 6;
		if (put(o, b64[(o->bits >> o->nbits) & 0x3f]) == -1)
			return -1;
	}
	o->bits &= (1u << o->nbits) - 1;
	return 0;
}

static int
end_run(struct out *o)
{
	if (o->nbits > 0 && put(o, b64[(o->bits << (6 - o->nbits)) & 0x3f]) == -1)
		return -1;
	o->bits = 0;
	o->nbits = 0;
	return put(o, '-');
}

int
ft_imap_mailbox(char *buf, size_t size, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	struct out o = { buf, size, 0, 0, 0 };
	int in_run = 0, rc = 0;
	uint32_t cp;
	size_t len;

	if (size < 3 || put(&o, '"') == -1)
		return -1;
	while (*p != '\0' && rc == 0) {
		if ((len = utf8_next(p, &cp)) == 0)
			return -1;
		p += len;
		if (cp >= 0x20 && cp < 0x7f) {
			if (in_run && end_run(&o) == -1)
				return -1;
			in_run = 0;
			if (cp == '"' || cp == '\\')
				rc = put(&o, '\\');
			if (rc == 0)
				rc = put(&o, (char)cp);
			if (rc == 0 && cp == '&')
				rc = put(&o, '-');
			continue;
		}
		if (!in_run)
			rc = put(&o, '&');
		in_run = 1;
		if (rc == 0 && cp >= 0x10000) {
			cp -= 0x10000;
			rc = put16(&o, 0xd800 | (cp >> 10));
			cp = 0xdc00 | (cp & 0x3ff);
		}
		if (rc == 0)
			rc = put16(&o, cp);
	}
	if (rc == 0 && in_run)
		rc = end_run(&o);
	if (rc == -1 || o.n + 2 > size)
		return -1;
	buf[o.n++] = '"';
	buf[o.n] = '\0';
	return 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static long long
days_from_civil(int y, unsigned m, unsigned d)
{
	unsigned yoe, doy, doe;
	int era;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (long long)era * 146097 + (long long)doe - 719468;
}

int
ft_imap_internaldate(const char *s, time_t *t)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	char mon[4], sign;
	int day, year, hh, mm, ss, zone, n = 0;
	const char *m;
	long long secs;

	if (*s == ' ')
		s++;
	if (sscanf(s, "%2d-%3[A-Za-z]-%4d %2d:%2d:%2d %c%4d%n", &day, mon,
	    &year, &hh, &mm, &ss, &sign, &zone, &n) != 8 || s[n] != '\0')
		return -1;
	for (m = months; *m != '\0'; m += 3)
		if (strncasecmp(m, mon, 3) == 0)
			break;
	if (*m == '\0' || strlen(mon) != 3 || day < 1 || day > 31 ||
	    year < 1900 || hh > 23 || mm > 59 || ss > 60 || hh < 0 || mm < 0 ||
	    ss < 0 || (sign != '+' && sign != '-') || zone < 0 ||
	    zone % 100 > 59)
		return -1;
	secs = days_from_civil(year, (unsigned)((m - months) / 3 + 1),
	    (unsigned)day) * 86400 + hh * 3600 + mm * 60 + ss;
	zone = (zone / 100) * 3600 + (zone % 100) * 60;
	secs += sign == '+' ? -zone : zone;
	*t = (time_t)secs;
	return 0;
}
