/*
 * pop3_parse: pure parsers for what a POP3 server sends (RFC 1939, 2449,
 * 3206): status lines, CAPA, UIDL and LIST lines, and a streaming decoder
 * for multi-line replies such as RETR.
 *
 * No sockets, no global state, no logging, no allocation. Lines are given as
 * pointer + length and need not be NUL-terminated; results point into the
 * caller's buffer (valid as long as it is) or into the decoder itself.
 *
 * Errors: functions store a static English reason in *why (never NULL after
 * a failure) that names what was wrong but quotes no peer data, so it can go
 * into a log line as is.
 *
 * The expected call sequence for a reply: mt_pop3_line_next() finds the
 * status line, mt_pop3_status_parse() reads it; a multi-line reply body then
 * goes either line by line through mt_pop3_line_next(multiline = 1) (CAPA,
 * UIDL, LIST: lines are short and capped) or through struct mt_pop3_ml
 * (RETR, TOP: content streams out, nothing is held whole).
 */
#ifndef MAILTUNNEL_POP3_PARSE_H
#define MAILTUNNEL_POP3_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* A sensible default for max_line below (RFC 2449 allows 512 bytes). */
#define MT_POP3_LINE_MAX_DEFAULT 8192

/*
 * Find the next line in buf[0..len) for a non-body reply line.
 *   MT_POP3_LINE_OK        *line and *line_len are the line without its end
 *                          (CRLF or a bare LF); *consumed counts the end too.
 *   MT_POP3_LINE_END       (multiline only) the terminating "." line; the
 *                          caller drains *consumed and the reply is over.
 *   MT_POP3_LINE_NEED_MORE no complete line yet; nothing consumed.
 *   MT_POP3_LINE_ERROR     a line longer than max_line bytes (without its
 *                          end), or one that contains a NUL byte.
 * With multiline set, a leading dot is removed (RFC 1939 byte-stuffing).
 */
enum mt_pop3_line_result {
	MT_POP3_LINE_ERROR = -1,
	MT_POP3_LINE_NEED_MORE = 0,
	MT_POP3_LINE_OK = 1,
	MT_POP3_LINE_END = 2
};
enum mt_pop3_line_result mt_pop3_line_next(const char *buf, size_t len,
    size_t max_line, int multiline, const char **line, size_t *line_len,
    size_t *consumed, const char **why);

/* Status lines. */
enum mt_pop3_status {
	MT_POP3_OK,			/* "+OK" */
	MT_POP3_ERR,			/* "-ERR" */
	MT_POP3_CONT			/* "+ " SASL continuation */
};

/* RFC 2449 response codes, with the SYS and AUTH codes of RFC 3206. */
enum mt_pop3_code {
	MT_POP3_CODE_NONE,
	MT_POP3_CODE_IN_USE,		/* [IN-USE]: mailbox locked by another session */
	MT_POP3_CODE_LOGIN_DELAY,	/* [LOGIN-DELAY]: logged in too recently */
	MT_POP3_CODE_SYS_TEMP,		/* [SYS/TEMP] */
	MT_POP3_CODE_SYS_PERM,		/* [SYS/PERM] */
	MT_POP3_CODE_AUTH,		/* [AUTH]: the credentials are wrong */
	MT_POP3_CODE_UTF8,		/* [UTF8] (RFC 6856) */
	MT_POP3_CODE_OTHER		/* any other well-formed code */
};

/* What a failed reply means for the fetch job. */
enum mt_pop3_failure {
	MT_POP3_FAIL_UNKNOWN,		/* no code: judge by the command */
	MT_POP3_FAIL_TEMP,		/* retry later */
	MT_POP3_FAIL_AUTH,		/* credentials refused: tell the user */
	MT_POP3_FAIL_PERM		/* retrying will not help */
};

struct mt_pop3_status_line {
	enum mt_pop3_status status;
	enum mt_pop3_code code;
	const char *code_text;		/* inside the brackets, e.g. "SYS/TEMP" */
	size_t code_len;		/* 0 when there is no code */
	const char *text;		/* the rest, after the code; for CONT the
					   base64 challenge */
	size_t text_len;
};

/* 0, or -1 with *why. line excludes the line end. */
int mt_pop3_status_parse(const char *line, size_t len,
    struct mt_pop3_status_line *out, const char **why);
enum mt_pop3_failure mt_pop3_code_failure(enum mt_pop3_code code);
/* "IN-USE", "SYS/TEMP", ...; "" for NONE, "other" for OTHER. */
const char *mt_pop3_code_name(enum mt_pop3_code code);

/* CAPA (RFC 2449). Feed each line of the multi-line reply. */
enum {
	MT_POP3_CAPA_TOP = 1u << 0,
	MT_POP3_CAPA_USER = 1u << 1,
	MT_POP3_CAPA_SASL = 1u << 2,
	MT_POP3_CAPA_RESP_CODES = 1u << 3,
	MT_POP3_CAPA_LOGIN_DELAY = 1u << 4,
	MT_POP3_CAPA_PIPELINING = 1u << 5,
	MT_POP3_CAPA_EXPIRE = 1u << 6,
	MT_POP3_CAPA_UIDL = 1u << 7,
	MT_POP3_CAPA_IMPLEMENTATION = 1u << 8,
	MT_POP3_CAPA_STLS = 1u << 9,
	MT_POP3_CAPA_AUTH_RESP_CODE = 1u << 10,
	MT_POP3_CAPA_UTF8 = 1u << 11
};

#define MT_POP3_EXPIRE_NEVER (-1L)

struct mt_pop3_capa {
	unsigned flags;			/* MT_POP3_CAPA_* */
	unsigned sasl;			/* MT_SASL_* bits (see sasl.h) */
	long expire_days;		/* EXPIRE: days, or MT_POP3_EXPIRE_NEVER */
	int expire_per_user;		/* "EXPIRE 30 USER" */
	unsigned long login_delay;	/* LOGIN-DELAY seconds */
	int login_delay_per_user;
	char implementation[64];	/* printable ASCII, truncated */
};

/* Start with an empty set, then feed each line; unknown names are ignored. */
void mt_pop3_capa_init(struct mt_pop3_capa *capa);
int mt_pop3_capa_line(struct mt_pop3_capa *capa, const char *line,
    size_t len, const char **why);

/*
 * "msgnum uid" (UIDL) and "msgnum size" (LIST). These also read the text of
 * a single-message "+OK 1 uid" reply. A uid is 1-70 bytes 0x21-0x7E; it is
 * returned by reference into line.
 */
#define MT_POP3_UID_MAX 70
int mt_pop3_uidl_parse(const char *line, size_t len, unsigned long *msgnum,
    const char **uid, size_t *uid_len, const char **why);
int mt_pop3_list_parse(const char *line, size_t len, unsigned long *msgnum,
    uint64_t *size, const char **why);

/*
 * Streaming decoder for a multi-line reply body (the part after "+OK ...").
 *
 * Feed it chunks split anywhere. Each call emits the content found so far,
 * dot-unstuffed and with the chosen line ending, through emit(), and stops
 * right after the terminating "." line: bytes after it belong to the next
 * (pipelined) reply and are not consumed. Content goes out as spans of the
 * input, or of a small scratch buffer inside the decoder; nothing grows with
 * the size of the message.
 *
 * The line that ends before the terminator keeps its line end: a message
 * that did not end with a newline comes out with the CRLF the server added.
 */
enum mt_pop3_eol {
	MT_POP3_EOL_ASIS,		/* exactly as received */
	MT_POP3_EOL_LF,			/* CRLF and bare LF both become LF */
	MT_POP3_EOL_CRLF		/* both become CRLF */
};

/* Return 0 to go on, -1 to stop: mt_pop3_ml_feed() then fails. */
typedef int mt_pop3_emit_fn(void *arg, const char *data, size_t len);

#define MT_POP3_ML_SCRATCH 2048

struct mt_pop3_ml {
	/* private; set up with mt_pop3_ml_init() */
	enum mt_pop3_eol eol;
	int state;
	int done;
	mt_pop3_emit_fn *emit;
	void *arg;
	const char *span;		/* pending run of input to emit */
	size_t span_len;
	size_t scratch_len;
	char scratch[MT_POP3_ML_SCRATCH];
	/* public, read-only */
	uint64_t bytes_out;		/* content bytes emitted */
	uint64_t lines;			/* content lines seen */
};

void mt_pop3_ml_init(struct mt_pop3_ml *ml, enum mt_pop3_eol eol,
    mt_pop3_emit_fn *emit, void *arg);
/*
 * 1: the terminator was seen (*consumed counts up to and including it);
 * 0: need more input (all of it was consumed); -1: emit() failed (*why).
 * Calling again after 1 consumes nothing and returns 1.
 */
int mt_pop3_ml_feed(struct mt_pop3_ml *ml, const char *in, size_t len,
    size_t *consumed, const char **why);
/* 1 once the terminator was seen. */
int mt_pop3_ml_done(const struct mt_pop3_ml *ml);

#endif
