/*
 * fetch/pop3_parse: POP3 reply lines (status, CAPA, UIDL, LIST). See
 * include/mailtunnel/pop3_parse.h; the multi-line decoder is in
 * pop3_multiline.c.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "mailtunnel/pop3_parse.h"
#include "mailtunnel/sasl.h"
#include "mailtunnel/util.h"

enum mt_pop3_line_result
mt_pop3_line_next(const char *buf, size_t len, size_t max_line, int multiline,
    const char **line, size_t *line_len, size_t *consumed, const char **why)
{
	size_t window = (max_line < SIZE_MAX - 2) ? max_line + 2 : SIZE_MAX;
	const char *lf = memchr(buf, '\n', len < window ? len : window);
	size_t n;

	if (lf == NULL) {
		if (len < window)
			return MT_POP3_LINE_NEED_MORE;
		*why = "reply line too long";
		return MT_POP3_LINE_ERROR;
	}
	n = (size_t)(lf - buf);
	*consumed = n + 1;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n > max_line) {
		*why = "reply line too long";
		return MT_POP3_LINE_ERROR;
	}
	if (memchr(buf, '\0', n) != NULL) {
		*why = "reply line contains a NUL byte";
		return MT_POP3_LINE_ERROR;
	}
	*line = buf;
	*line_len = n;
	if (multiline && n > 0 && buf[0] == '.') {
		if (n == 1)
			return MT_POP3_LINE_END;
		(*line)++;
		(*line_len)--;
	}
	return MT_POP3_LINE_OK;
}

/* Case-insensitive match of a whole word of known length. */
static int
word_eq(const char *w, size_t len, const char *s)
{
	return strlen(s) == len && strncasecmp(w, s, len) == 0;
}

/* rchar of RFC 2449: printable ASCII except "/" and "]". */
static int
is_rchar(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e && c != '/' && c != ']';
}

static enum mt_pop3_code
classify_code(const char *c, size_t len)
{
	const char *slash = memchr(c, '/', len);
	size_t first = slash ? (size_t)(slash - c) : len;
	const char *second = slash ? slash + 1 : NULL;
	size_t second_len = 0;

	if (second != NULL) {
		const char *s2 = memchr(second, '/', len - first - 1);
		second_len = s2 ? (size_t)(s2 - second) : len - first - 1;
	}
	/* Codes are hierarchical: an unknown sub-level means its parent. */
	if (word_eq(c, first, "IN-USE"))
		return MT_POP3_CODE_IN_USE;
	if (word_eq(c, first, "LOGIN-DELAY"))
		return MT_POP3_CODE_LOGIN_DELAY;
	if (word_eq(c, first, "AUTH"))
		return MT_POP3_CODE_AUTH;
	if (word_eq(c, first, "UTF8"))
		return MT_POP3_CODE_UTF8;
	if (word_eq(c, first, "SYS") && second != NULL) {
		if (word_eq(second, second_len, "TEMP"))
			return MT_POP3_CODE_SYS_TEMP;
		if (word_eq(second, second_len, "PERM"))
			return MT_POP3_CODE_SYS_PERM;
	}
	return MT_POP3_CODE_OTHER;
}

/* A well-formed "[level/level]" at the start of text, or leave it as text. */
static void
parse_code(struct mt_pop3_status_line *out)
{
	const char *t = out->text;
	size_t i, len = out->text_len;
	int level_len = 0;

	if (len < 3 || t[0] != '[')
		return;
	for (i = 1; i < len && t[i] != ']'; i++) {
		if (t[i] == '/') {
			if (level_len == 0)
				return;
			level_len = 0;
		} else if (is_rchar((unsigned char)t[i])) {
			level_len++;
		} else {
			return;
		}
	}
	if (i == len || level_len == 0)
		return;
	out->code_text = t + 1;
	out->code_len = i - 1;
	out->code = classify_code(out->code_text, out->code_len);
	i++;
	if (i < len && t[i] == ' ')
		i++;
	out->text = t + i;
	out->text_len = len - i;
}

int
mt_pop3_status_parse(const char *line, size_t len,
    struct mt_pop3_status_line *out, const char **why)
{
	size_t skip;

	memset(out, 0, sizeof(*out));
	if (len >= 3 && strncasecmp(line, "+OK", 3) == 0 &&
	    (len == 3 || line[3] == ' ')) {
		out->status = MT_POP3_OK;
		skip = 3;
	} else if (len >= 4 && strncasecmp(line, "-ERR", 4) == 0 &&
	    (len == 4 || line[4] == ' ')) {
		out->status = MT_POP3_ERR;
		skip = 4;
	} else if (len >= 1 && line[0] == '+' && (len == 1 || line[1] == ' ')) {
		out->status = MT_POP3_CONT;
		skip = 1;
	} else {
		*why = "expected +OK, -ERR or a \"+ \" continuation";
		return -1;
	}
	if (skip < len)
		skip++;
	out->text = line + skip;
	out->text_len = len - skip;
	if (out->status != MT_POP3_CONT)
		parse_code(out);
	return 0;
}

enum mt_pop3_failure
mt_pop3_code_failure(enum mt_pop3_code code)
{
	switch (code) {
	case MT_POP3_CODE_IN_USE:
	case MT_POP3_CODE_LOGIN_DELAY:
	case MT_POP3_CODE_SYS_TEMP:
		return MT_POP3_FAIL_TEMP;
	case MT_POP3_CODE_AUTH:
		return MT_POP3_FAIL_AUTH;
	case MT_POP3_CODE_SYS_PERM:
	case MT_POP3_CODE_UTF8:
		return MT_POP3_FAIL_PERM;
	case MT_POP3_CODE_NONE:
	case MT_POP3_CODE_OTHER:
		break;
	}
	return MT_POP3_FAIL_UNKNOWN;
}

const char *
mt_pop3_code_name(enum mt_pop3_code code)
{
	switch (code) {
	case MT_POP3_CODE_NONE: return "";
	case MT_POP3_CODE_IN_USE: return "IN-USE";
	case MT_POP3_CODE_LOGIN_DELAY: return "LOGIN-DELAY";
	case MT_POP3_CODE_SYS_TEMP: return "SYS/TEMP";
	case MT_POP3_CODE_SYS_PERM: return "SYS/PERM";
	case MT_POP3_CODE_AUTH: return "AUTH";
	case MT_POP3_CODE_UTF8: return "UTF8";
	case MT_POP3_CODE_OTHER: break;
	}
	return "other";
}

/*
 * Decimal digits at line[*i]; 0 and the value, -1 when there are none, -2
 * when the value exceeds max.
 */
static int
parse_num(const char *line, size_t len, size_t *i, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t start = *i;

	for (; *i < len && line[*i] >= '0' && line[*i] <= '9'; (*i)++) {
		unsigned d = (unsigned)(line[*i] - '0');
		if (v > (max - d) / 10)
			return -2;
		v = v * 10 + d;
	}
	if (*i == start)
		return -1;
	*out = v;
	return 0;
}

static int
is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* Next whitespace-separated word from line[*i]; 0 at the end of the line. */
static size_t
next_word(const char *line, size_t len, size_t *i, const char **w)
{
	size_t start;

	while (*i < len && is_space(line[*i]))
		(*i)++;
	start = *i;
	while (*i < len && !is_space(line[*i]))
		(*i)++;
	*w = line + start;
	return *i - start;
}

void
mt_pop3_capa_init(struct mt_pop3_capa *capa)
{
	memset(capa, 0, sizeof(*capa));
}

static int
capa_sasl(struct mt_pop3_capa *capa, const char *line, size_t len, size_t i,
    const char **why)
{
	const char *w;
	size_t wl;
	unsigned bit, n = 0;

	while ((wl = next_word(line, len, &i, &w)) > 0) {
		if (!mt_sasl_mech_name_valid(w, wl)) {
			*why = "CAPA SASL lists a malformed mechanism name";
			return -1;
		}
		bit = mt_sasl_mech_bit(w, wl);
		capa->sasl |= bit != 0 ? bit : MT_SASL_OTHER;
		n++;
	}
	if (n == 0) {
		*why = "CAPA SASL lists no mechanisms";
		return -1;
	}
	capa->flags |= MT_POP3_CAPA_SASL;
	return 0;
}

/* "EXPIRE NEVER|days [USER]" and "LOGIN-DELAY seconds [USER]". */
static int
capa_expire(struct mt_pop3_capa *capa, const char *line, size_t len, size_t i,
    int expire, const char **why)
{
	const char *w, *w2;
	size_t wl, j = 0;
	uint64_t v;
	int per_user;

	wl = next_word(line, len, &i, &w);
	if (wl == 0) {
		*why = expire ? "CAPA EXPIRE has no value" :
		    "CAPA LOGIN-DELAY has no value";
		return -1;
	}
	per_user = next_word(line, len, &i, &w2) == 4 &&
	    strncasecmp(w2, "USER", 4) == 0;
	if (expire && word_eq(w, wl, "NEVER")) {
		capa->expire_days = MT_POP3_EXPIRE_NEVER;
	} else if (parse_num(w, wl, &j, UINT32_MAX, &v) != 0 || j != wl) {
		*why = expire ? "CAPA EXPIRE is neither NEVER nor a number of days" :
		    "CAPA LOGIN-DELAY is not a number of seconds";
		return -1;
	} else if (expire) {
		capa->expire_days = (long)v;
	} else {
		capa->login_delay = (unsigned long)v;
	}
	if (expire) {
		capa->flags |= MT_POP3_CAPA_EXPIRE;
		capa->expire_per_user = per_user;
	} else {
		capa->flags |= MT_POP3_CAPA_LOGIN_DELAY;
		capa->login_delay_per_user = per_user;
	}
	return 0;
}

static void
capa_implementation(struct mt_pop3_capa *capa, const char *line, size_t len,
    size_t i)
{
	size_t n = 0;

	while (i < len && is_space(line[i]))
		i++;
	for (; i < len && n + 1 < sizeof(capa->implementation); i++) {
		unsigned char c = (unsigned char)line[i];
		capa->implementation[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	capa->implementation[n] = '\0';
	capa->flags |= MT_POP3_CAPA_IMPLEMENTATION;
}

int
mt_pop3_capa_line(struct mt_pop3_capa *capa, const char *line, size_t len,
    const char **why)
{
	static const struct {
		const char *name;
		unsigned flag;
	} simple[] = {
		{ "TOP", MT_POP3_CAPA_TOP }, { "USER", MT_POP3_CAPA_USER },
		{ "RESP-CODES", MT_POP3_CAPA_RESP_CODES },
		{ "PIPELINING", MT_POP3_CAPA_PIPELINING },
		{ "UIDL", MT_POP3_CAPA_UIDL }, { "STLS", MT_POP3_CAPA_STLS },
		{ "AUTH-RESP-CODE", MT_POP3_CAPA_AUTH_RESP_CODE },
		{ "UTF8", MT_POP3_CAPA_UTF8 },
	};
	const char *w;
	size_t i = 0, k, wl;

	if (len == 0 || is_space(line[0])) {
		*why = "CAPA line is empty or starts with a space";
		return -1;
	}
	for (k = 0; k < len; k++) {
		unsigned char c = (unsigned char)line[k];
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			*why = "CAPA line contains a control character";
			return -1;
		}
	}
	wl = next_word(line, len, &i, &w);
	for (k = 0; k < MT_ARRAY_LEN(simple); k++) {
		if (word_eq(w, wl, simple[k].name)) {
			capa->flags |= simple[k].flag;
			return 0;
		}
	}
	if (word_eq(w, wl, "SASL"))
		return capa_sasl(capa, line, len, i, why);
	if (word_eq(w, wl, "EXPIRE"))
		return capa_expire(capa, line, len, i, 1, why);
	if (word_eq(w, wl, "LOGIN-DELAY"))
		return capa_expire(capa, line, len, i, 0, why);
	if (word_eq(w, wl, "IMPLEMENTATION"))
		capa_implementation(capa, line, len, i);
	/* RFC 2449: a client ignores capabilities it does not know. */
	return 0;
}

/* The "msgnum SP" that UIDL and LIST lines share. */
static int
parse_msgnum(const char *line, size_t len, size_t *i, unsigned long *msgnum,
    const char **why)
{
	uint64_t v;

	switch (parse_num(line, len, i, UINT32_MAX, &v)) {
	case -1:
		*why = "expected a message number";
		return -1;
	case -2:
		*why = "message number too large";
		return -1;
	}
	if (v == 0) {
		*why = "message number 0 (numbers start at 1)";
		return -1;
	}
	if (*i >= len || line[*i] != ' ') {
		*why = "expected a space after the message number";
		return -1;
	}
	while (*i < len && line[*i] == ' ')
		(*i)++;
	*msgnum = (unsigned long)v;
	return 0;
}

int
mt_pop3_uidl_parse(const char *line, size_t len, unsigned long *msgnum,
    const char **uid, size_t *uid_len, const char **why)
{
	size_t i = 0, start, end;

	if (parse_msgnum(line, len, &i, msgnum, why) == -1)
		return -1;
	start = i;
	while (i < len && line[i] >= 0x21 && line[i] <= 0x7e)
		i++;
	end = i;
	if (end == start && i == len) {
		*why = "expected a unique-id after the message number";
		return -1;
	}
	while (i < len && line[i] == ' ')
		i++;
	if (i < len) {
		*why = (end == i) ?
		    "unique-id contains a byte outside 0x21-0x7E" :
		    "unexpected text after the unique-id";
		return -1;
	}
	if (end - start > MT_POP3_UID_MAX) {
		*why = "unique-id longer than 70 bytes";
		return -1;
	}
	*uid = line + start;
	*uid_len = end - start;
	return 0;
}

int
mt_pop3_list_parse(const char *line, size_t len, unsigned long *msgnum,
    uint64_t *size, const char **why)
{
	size_t i = 0;

	if (parse_msgnum(line, len, &i, msgnum, why) == -1)
		return -1;
	switch (parse_num(line, len, &i, INT64_MAX, size)) {
	case -1:
		*why = "expected a message size";
		return -1;
	case -2:
		*why = "message size too large";
		return -1;
	}
	/* RFC 1939 lets servers add more after the size. */
	if (i < len && line[i] != ' ') {
		*why = "expected a space or the end of the line after the size";
		return -1;
	}
	return 0;
}
