/*
 * util/num: number, duration and size parsers. See include/mailtunnel/util.h.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mailtunnel/util.h"

int
mt_parse_bool(const char *s, int *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t i;

	for (i = 0; i < MT_ARRAY_LEN(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

/* Digits only, no sign, no overflow; *end points past the digits. */
static int
parse_digits(const char *s, const char **end, unsigned long long *out)
{
	unsigned long long v = 0;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (~0ULL - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*end = p;
	*out = v;
	return 0;
}

int
mt_parse_uint(const char *s, unsigned long long min, unsigned long long max,
    unsigned long long *out)
{
	const char *end;
	unsigned long long v;

	if (parse_digits(s, &end, &v) == -1 || *end != '\0')
		return -1;
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Multiply without overflow: 0 or -1. */
static int
mul_add(unsigned long long *acc, unsigned long long v, unsigned long long mult)
{
	if (mult != 0 && v > ~0ULL / mult)
		return -1;
	if (*acc > ~0ULL - v * mult)
		return -1;
	*acc += v * mult;
	return 0;
}

int
mt_parse_duration(const char *s, unsigned long long *seconds)
{
	unsigned long long total = 0, v, mult;
	const char *p = s;
	int parts = 0;

	if (*p == '\0')
		return -1;
	while (*p != '\0') {
		if (parse_digits(p, &p, &v) == -1)
			return -1;
		switch (tolower((unsigned char)*p)) {
		case '\0':
			/* A number without a unit (seconds) stands alone. */
			if (parts > 0)
				return -1;
			mult = 1;
			break;
		case 's': mult = 1; p++; break;
		case 'm': mult = 60; p++; break;
		case 'h': mult = 3600; p++; break;
		case 'd': mult = 86400; p++; break;
		case 'w': mult = 604800; p++; break;
		default: return -1;
		}
		if (mul_add(&total, v, mult) == -1)
			return -1;
		parts++;
	}
	*seconds = total;
	return 0;
}

int
mt_parse_size(const char *s, unsigned long long *bytes)
{
	unsigned long long v, mult = 1;
	const char *end;

	if (parse_digits(s, &end, &v) == -1)
		return -1;
	switch (tolower((unsigned char)*end)) {
	case '\0': break;
	case 'k': mult = 1ULL << 10; end++; break;
	case 'm': mult = 1ULL << 20; end++; break;
	case 'g': mult = 1ULL << 30; end++; break;
	case 'b': break;
	default: return -1;
	}
	if (tolower((unsigned char)*end) == 'b')
		end++;
	if (*end != '\0')
		return -1;
	if (v > ~0ULL / mult)
		return -1;
	*bytes = v * mult;
	return 0;
}

void
mt_format_duration(unsigned long long seconds, char *buf, size_t size)
{
	static const struct {
		unsigned long long mult;
		char unit;
	} units[] = {
		{ 604800, 'w' }, { 86400, 'd' }, { 3600, 'h' }, { 60, 'm' },
	};
	size_t i;

	for (i = 0; i < MT_ARRAY_LEN(units); i++) {
		if (seconds != 0 && seconds % units[i].mult == 0) {
			snprintf(buf, size, "%llu%c", seconds / units[i].mult,
			    units[i].unit);
			return;
		}
	}
	snprintf(buf, size, "%llus", seconds);
}
