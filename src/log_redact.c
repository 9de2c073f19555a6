/*
 * log_redact: make a client protocol line safe for a trace. The rule is a
 * whitelist by position: for the few commands that carry secrets, keep the
 * command word (and, for IMAP LOGIN, the user name) and replace the rest.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "mailtunnel/log.h"

#define REDACTED "<redacted>"

struct words {
	const char *w[3];	/* first three space-separated words */
	size_t len[3];
	size_t n;
};

static void
split_words(const char *line, size_t len, struct words *ws)
{
	size_t i = 0;

	ws->n = 0;
	while (ws->n < 3) {
		while (i < len && line[i] == ' ')
			i++;
		if (i >= len)
			break;
		ws->w[ws->n] = line + i;
		while (i < len && line[i] != ' ')
			i++;
		ws->len[ws->n] = (size_t)(line + i - ws->w[ws->n]);
		ws->n++;
	}
}

static int
word_is(const struct words *ws, size_t k, const char *cmd)
{
	return k < ws->n && ws->len[k] == strlen(cmd) &&
	    strncasecmp(ws->w[k], cmd, ws->len[k]) == 0;
}

/*
 * How many leading bytes of the line may be shown; the rest, if any, is
 * replaced. len when nothing is secret.
 */
static size_t
visible_prefix(const char *line, size_t len)
{
	struct words ws;
	size_t k;

	split_words(line, len, &ws);
	if (ws.n == 0)
		return len;
	/* POP3 and SMTP commands start the line; IMAP ones follow a tag. */
	if (word_is(&ws, 0, "PASS") || word_is(&ws, 0, "APOP") ||
	    word_is(&ws, 0, "AUTH"))
		k = 0;
	else if (word_is(&ws, 1, "LOGIN") || word_is(&ws, 1, "AUTHENTICATE"))
		k = 1;
	else
		return len;

	if (word_is(&ws, k, "PASS"))
		return (size_t)(ws.w[k] + ws.len[k] - line);
	/* APOP name digest, LOGIN user pass: the second argument is secret. */
	if (word_is(&ws, k, "APOP") || word_is(&ws, k, "LOGIN")) {
		if (k + 1 < ws.n && ws.w[k + 1][0] != '{')
			return (size_t)(ws.w[k + 1] + ws.len[k + 1] - line);
		return (size_t)(ws.w[k] + ws.len[k] - line);
	}
	/* AUTH[ENTICATE] mechanism [initial-response] */
	if (k + 1 < ws.n)
		return (size_t)(ws.w[k + 1] + ws.len[k + 1] - line);
	return len;
}

char *
mt_log_redact(const char *line, size_t len, char *out, size_t outsz)
{
	size_t keep, i, n = 0;

	if (outsz == 0)
		return out;
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	keep = visible_prefix(line, len);
	for (i = 0; i < keep && n + 1 < outsz; i++) {
		unsigned char c = (unsigned char)line[i];
		out[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	out[n] = '\0';
	/* All of the marker or none of it: a cut marker would look like data. */
	if (keep < len && n + sizeof(" " REDACTED) <= outsz)
		memcpy(out + n, " " REDACTED, sizeof(" " REDACTED));
	return out;
}
