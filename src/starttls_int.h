/*
 * starttls_int: shared by starttls.c (feeding, set-up, accessors) and
 * starttls_proto.c (what each protocol's lines mean). Nothing else sees
 * the machine's insides.
 */
#ifndef MT_STARTTLS_INT_H
#define MT_STARTTLS_INT_H

#include <stddef.h>

#include "mailtunnel/starttls.h"

enum st_state {
	S_GREETING,
	S_POP3_CAPA,		/* +OK or -ERR of CAPA */
	S_POP3_CAPA_LIST,	/* capability lines up to "." */
	S_POP3_STLS,
	S_IMAP_CAPABILITY,	/* tagged reply of CAPABILITY */
	S_IMAP_STARTTLS,
	S_SMTP_EHLO,
	S_SMTP_STARTTLS,
	S_DONE,
};

#define GREETING_MAX (MT_STARTTLS_MAX_LINE + 2)
/* How much of a server line a log phrase quotes. */
#define EXCERPT 120

struct mt_starttls {
	enum mt_protocol proto;
	enum mt_starttls_mode mode;
	enum st_state state;
	enum mt_starttls_status status;
	enum mt_starttls_error error;
	char ehlo[MT_CONFIG_EHLO_MAX + 1];

	size_t total;			/* bytes fed so far */
	int asked;			/* this batch made a command */
	int offered;			/* STLS/STARTTLS seen */
	int smtp_code;			/* of a multi-line reply; 0: none */
	size_t literal;			/* IMAP literal bytes left to skip */
	int continued;			/* IMAP: a literal's response goes on */
	const char *cmd;		/* the last command, for messages */

	char out[MT_CONFIG_EHLO_MAX + 16];
	size_t outlen;
	char line[MT_STARTTLS_MAX_LINE + 1];	/* + a CR before the LF */
	size_t linelen;
	char greeting[GREETING_MAX];
	size_t greetlen;
	char reason[400];
};

/* Record a refusal: status FAILED, the error, the reason (printf). */
void mt_starttls_fail(struct mt_starttls *st, enum mt_starttls_error e,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Server text for a log line: printable ASCII only, shortened to n - 4. */
char *mt_starttls_excerpt(const char *s, size_t len, char *buf, size_t n);
/* n bytes arrived before the server could have read our last command. */
void mt_starttls_out_of_turn(struct mt_starttls *st, size_t n);

/* One complete line (without its line end), by protocol. */
void mt_starttls_pop3_line(struct mt_starttls *st, const char *l, size_t n);
void mt_starttls_imap_line(struct mt_starttls *st, const char *l, size_t n);
void mt_starttls_smtp_line(struct mt_starttls *st, const char *l, size_t n);

#endif
