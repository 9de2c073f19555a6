/*
 * imap_parse: an incremental parser for IMAP server responses (the subset
 * of RFC 9051 / RFC 3501 a mail fetcher meets), pure over bytes.
 *
 * Use: create a parser with mt_imap_parser_new(), then hand it whatever
 * arrived, in chunks split anywhere, with mt_imap_parser_feed(). Each call
 * returns at most one event and says how many input bytes it used; call
 * again with the rest. Bytes of the next response are never read early, so
 * several pipelined commands' responses can sit in one buffer.
 *
 * Memory: the parser allocates one buffer at creation, sized from the
 * limits, and nothing afterwards. The body of a FETCH (BODY[], BINARY[],
 * RFC822 literals) is never held: it comes out as FETCH_DATA events that
 * point into the caller's input. Everything else in one response (the line
 * outside literals, small literals such as a LIST mailbox name) must fit the
 * limits, and SEARCH/ESEARCH result lists stream out in batches, so a huge
 * mailbox does not need a huge line.
 *
 * Lifetime: the event returned by feed belongs to the parser. Its strings
 * point into the parser's buffer, except FETCH_DATA, which points into the
 * input given to that call. Both stay valid until the next call to feed or
 * free. Nothing is NUL-terminated unless said so.
 *
 * Pipelining: the client tags its commands with mt_imap_tag_format() and
 * sends several (e.g. UID FETCH batches) before reading; the TAGGED event of
 * each carries its tag, which mt_imap_tag_parse() maps back to the command
 * number. Untagged responses (FETCH, SEARCH, EXISTS ...) arrive before the
 * tagged completion of the command that caused them, in command order; a
 * FETCH says which message it is by its UID item.
 */
#ifndef MAILTUNNEL_IMAP_PARSE_H
#define MAILTUNNEL_IMAP_PARSE_H

#include <stddef.h>
#include <stdint.h>

struct mt_imap_parser;

struct mt_imap_limits {
	size_t line_max;	/* bytes of a response outside literals */
	size_t literal_max;	/* bytes of all small literals of a response */
	uint64_t body_max;	/* size of one streamed body literal */
	unsigned depth_max;	/* nesting of parenthesized lists */
};

#define MT_IMAP_LINE_MAX_DEFAULT 65536
#define MT_IMAP_LITERAL_MAX_DEFAULT 65536
#define MT_IMAP_BODY_MAX_DEFAULT (1ULL << 30)
#define MT_IMAP_DEPTH_MAX_DEFAULT 16

/* A string by reference; not NUL-terminated. */
struct mt_imap_str {
	const char *p;
	size_t len;
};

enum mt_imap_event_type {
	MT_IMAP_EV_TAGGED,		/* "tag OK|NO|BAD [code] text" */
	MT_IMAP_EV_CONTINUE,		/* "+ text": send the literal / SASL */
	MT_IMAP_EV_STATUS,		/* "* OK|NO|BAD|BYE|PREAUTH [code] text" */
	MT_IMAP_EV_CAPABILITY,		/* "* CAPABILITY ..." */
	MT_IMAP_EV_EXISTS,		/* "* n EXISTS" */
	MT_IMAP_EV_RECENT,		/* "* n RECENT" */
	MT_IMAP_EV_EXPUNGE,		/* "* n EXPUNGE" */
	MT_IMAP_EV_FLAGS,		/* "* FLAGS (...)" */
	MT_IMAP_EV_LIST,		/* "* LIST (...) "/" mailbox" (or LSUB) */
	MT_IMAP_EV_SEARCH,		/* a batch of SEARCH/ESEARCH ALL results */
	MT_IMAP_EV_SEARCH_DONE,		/* the last batch and the ESEARCH summary */
	MT_IMAP_EV_FETCH_BODY,		/* a body literal begins */
	MT_IMAP_EV_FETCH_DATA,		/* a piece of it */
	MT_IMAP_EV_FETCH,		/* "* n FETCH (...)" is complete */
	MT_IMAP_EV_OTHER		/* another untagged response */
};

enum mt_imap_status {
	MT_IMAP_OK,
	MT_IMAP_NO,
	MT_IMAP_BAD,
	MT_IMAP_BYE,
	MT_IMAP_PREAUTH
};

/* Response codes ("[...]" in a status response). */
enum mt_imap_code_kind {
	MT_IMAP_CODE_NONE,
	MT_IMAP_CODE_ALERT,
	MT_IMAP_CODE_AUTHENTICATIONFAILED,
	MT_IMAP_CODE_AUTHORIZATIONFAILED,
	MT_IMAP_CODE_EXPIRED,
	MT_IMAP_CODE_PRIVACYREQUIRED,
	MT_IMAP_CODE_CONTACTADMIN,
	MT_IMAP_CODE_UNAVAILABLE,
	MT_IMAP_CODE_INUSE,
	MT_IMAP_CODE_LIMIT,
	MT_IMAP_CODE_OVERQUOTA,
	MT_IMAP_CODE_SERVERBUG,
	MT_IMAP_CODE_NONEXISTENT,
	MT_IMAP_CODE_CANNOT,
	MT_IMAP_CODE_EXPUNGEISSUED,
	MT_IMAP_CODE_CORRUPTION,
	MT_IMAP_CODE_CAPABILITY,
	MT_IMAP_CODE_UIDVALIDITY,
	MT_IMAP_CODE_UIDNEXT,
	MT_IMAP_CODE_UNSEEN,
	MT_IMAP_CODE_PERMANENTFLAGS,
	MT_IMAP_CODE_READ_ONLY,
	MT_IMAP_CODE_READ_WRITE,
	MT_IMAP_CODE_TRYCREATE,
	MT_IMAP_CODE_PARSE,
	MT_IMAP_CODE_CLOSED,
	MT_IMAP_CODE_OTHER
};

/* What a NO/BAD/BYE means for the fetch job, from its code. */
enum mt_imap_failure {
	MT_IMAP_FAIL_UNKNOWN,		/* no telling code: judge by the command */
	MT_IMAP_FAIL_TEMP,		/* retry later */
	MT_IMAP_FAIL_AUTH,		/* the credentials were refused */
	MT_IMAP_FAIL_PERM		/* retrying will not help */
};

/* Capabilities, from "* CAPABILITY" or a [CAPABILITY ...] code. */
enum {
	MT_IMAP_CAP_IMAP4REV1 = 1u << 0,
	MT_IMAP_CAP_IMAP4REV2 = 1u << 1,
	MT_IMAP_CAP_STARTTLS = 1u << 2,
	MT_IMAP_CAP_LOGINDISABLED = 1u << 3,
	MT_IMAP_CAP_SASL_IR = 1u << 4,
	MT_IMAP_CAP_IDLE = 1u << 5,
	MT_IMAP_CAP_LITERAL_PLUS = 1u << 6,
	MT_IMAP_CAP_LITERAL_MINUS = 1u << 7,
	MT_IMAP_CAP_UIDPLUS = 1u << 8,
	MT_IMAP_CAP_ESEARCH = 1u << 9,
	MT_IMAP_CAP_CONDSTORE = 1u << 10,
	MT_IMAP_CAP_QRESYNC = 1u << 11,
	MT_IMAP_CAP_ENABLE = 1u << 12,
	MT_IMAP_CAP_ID = 1u << 13,
	MT_IMAP_CAP_MOVE = 1u << 14,
	MT_IMAP_CAP_BINARY = 1u << 15,
	MT_IMAP_CAP_UNSELECT = 1u << 16,
	MT_IMAP_CAP_NAMESPACE = 1u << 17,
	MT_IMAP_CAP_SPECIAL_USE = 1u << 18,
	MT_IMAP_CAP_UTF8_ACCEPT = 1u << 19,
	MT_IMAP_CAP_COMPRESS_DEFLATE = 1u << 20,
	MT_IMAP_CAP_X_GM_EXT_1 = 1u << 21
};

struct mt_imap_caps {
	uint32_t flags;			/* MT_IMAP_CAP_* */
	unsigned auth;			/* MT_SASL_* bits from AUTH=... */
	struct mt_imap_str raw;		/* the whole list as sent */
};

struct mt_imap_code {
	enum mt_imap_code_kind kind;
	struct mt_imap_str name;	/* the code's atom as sent */
	struct mt_imap_str arg;		/* what follows it up to "]", raw */
	uint32_t number;		/* UIDVALIDITY, UIDNEXT, UNSEEN */
	struct mt_imap_caps caps;	/* CAPABILITY */
};

/* System flags (FLAGS responses, FETCH FLAGS). */
enum {
	MT_IMAP_FLAG_SEEN = 1u << 0,
	MT_IMAP_FLAG_ANSWERED = 1u << 1,
	MT_IMAP_FLAG_FLAGGED = 1u << 2,
	MT_IMAP_FLAG_DELETED = 1u << 3,
	MT_IMAP_FLAG_DRAFT = 1u << 4,
	MT_IMAP_FLAG_RECENT = 1u << 5,
	MT_IMAP_FLAG_WILDCARD = 1u << 6	/* "\*" in PERMANENTFLAGS */
};

/* Mailbox attributes of LIST (RFC 9051, RFC 6154 special use). */
enum {
	MT_IMAP_LIST_NOSELECT = 1u << 0,
	MT_IMAP_LIST_NOINFERIORS = 1u << 1,
	MT_IMAP_LIST_HASCHILDREN = 1u << 2,
	MT_IMAP_LIST_HASNOCHILDREN = 1u << 3,
	MT_IMAP_LIST_MARKED = 1u << 4,
	MT_IMAP_LIST_UNMARKED = 1u << 5,
	MT_IMAP_LIST_NONEXISTENT = 1u << 6,
	MT_IMAP_LIST_SUBSCRIBED = 1u << 7,
	MT_IMAP_LIST_ALL = 1u << 8,
	MT_IMAP_LIST_ARCHIVE = 1u << 9,
	MT_IMAP_LIST_DRAFTS = 1u << 10,
	MT_IMAP_LIST_FLAGGED = 1u << 11,
	MT_IMAP_LIST_JUNK = 1u << 12,
	MT_IMAP_LIST_SENT = 1u << 13,
	MT_IMAP_LIST_TRASH = 1u << 14
};

/* FETCH items seen (mt_imap_fetch.have). */
enum {
	MT_IMAP_FETCH_UID = 1u << 0,
	MT_IMAP_FETCH_SIZE = 1u << 1,
	MT_IMAP_FETCH_INTERNALDATE = 1u << 2,
	MT_IMAP_FETCH_FLAGS = 1u << 3,
	MT_IMAP_FETCH_BODY = 1u << 4,
	MT_IMAP_FETCH_MODSEQ = 1u << 5
};

enum mt_imap_body_kind {
	MT_IMAP_BODY_NONE,
	MT_IMAP_BODY_STREAMED,		/* came as FETCH_BODY + FETCH_DATA events */
	MT_IMAP_BODY_INLINE,		/* a quoted string: see body_inline */
	MT_IMAP_BODY_NIL		/* NIL: the server has no such content */
};

struct mt_imap_fetch {
	uint32_t seq;			/* message sequence number */
	unsigned have;			/* MT_IMAP_FETCH_* */
	uint32_t uid;
	uint64_t size;			/* RFC822.SIZE */
	char internaldate[40];		/* as sent, NUL-terminated */
	unsigned flags;			/* MT_IMAP_FLAG_* */
	unsigned keywords;		/* how many other flags */
	uint64_t modseq;
	/* The last body item (BODY[..], BINARY[..], RFC822[.HEADER|.TEXT]). */
	enum mt_imap_body_kind body_kind;
	char section[64];		/* inside the brackets, or "RFC822...";
					   NUL-terminated, truncated */
	int binary;			/* BINARY[...] */
	int has_origin;			/* "<n>" after the section */
	uint64_t origin;
	uint64_t body_len;
	struct mt_imap_str body_inline;	/* BODY_INLINE only */
};

#define MT_IMAP_SEARCH_BATCH 64

struct mt_imap_range {
	uint32_t lo, hi;		/* lo <= hi; SEARCH gives lo == hi */
};

/* ESEARCH summary items (mt_imap_search.have). */
enum {
	MT_IMAP_ESEARCH_MIN = 1u << 0,
	MT_IMAP_ESEARCH_MAX = 1u << 1,
	MT_IMAP_ESEARCH_COUNT = 1u << 2,
	MT_IMAP_ESEARCH_ALL = 1u << 3
};

struct mt_imap_search {
	int esearch;			/* from "* ESEARCH" rather than "* SEARCH" */
	size_t n;			/* ranges in this batch */
	struct mt_imap_range r[MT_IMAP_SEARCH_BATCH];
	/* ESEARCH, complete in SEARCH_DONE: */
	char tag[64];			/* (TAG "...") correlator, NUL-terminated */
	int uid;			/* results are UIDs */
	unsigned have;			/* MT_IMAP_ESEARCH_* */
	uint32_t min, max, count;
};

struct mt_imap_event {
	enum mt_imap_event_type type;
	/* TAGGED, CONTINUE, STATUS */
	struct mt_imap_str tag;		/* TAGGED */
	enum mt_imap_status status;	/* TAGGED, STATUS */
	struct mt_imap_code code;	/* TAGGED, STATUS, CONTINUE */
	struct mt_imap_str text;	/* TAGGED, STATUS, CONTINUE */
	/* EXISTS, RECENT, EXPUNGE */
	uint32_t number;
	/* CAPABILITY */
	struct mt_imap_caps caps;
	/* FLAGS: MT_IMAP_FLAG_*; LIST: MT_IMAP_LIST_* */
	unsigned flags;
	unsigned keywords;		/* FLAGS: other flags */
	/* LIST */
	char delimiter;			/* 0 for NIL */
	struct mt_imap_str mailbox;	/* unescaped, as sent (modified UTF-7
					   or UTF-8) */
	/* SEARCH, SEARCH_DONE */
	struct mt_imap_search search;
	/*
	 * FETCH: all items. FETCH_BODY: the items before the body (UID may
	 * come only after it) and body_len. FETCH_DATA: seq only.
	 */
	struct mt_imap_fetch fetch;
	/* FETCH_DATA: points into the input given to this call */
	struct mt_imap_str data;
	/* OTHER: the response's keyword, e.g. "NAMESPACE" */
	struct mt_imap_str name;
};

/* NULL limits means the defaults; NULL on allocation failure. */
struct mt_imap_parser *mt_imap_parser_new(const struct mt_imap_limits *lim);
void mt_imap_parser_free(struct mt_imap_parser *p);

/*
 * Consume input from buf[0..len):
 *   1  an event is in *ev; *consumed bytes were used (maybe fewer than len);
 *   0  need more: all len bytes were used and the parser waits for more;
 *  -1  a protocol error: mt_imap_parser_error() says what was expected.
 *      The parser stays failed; the connection must be dropped.
 */
int mt_imap_parser_feed(struct mt_imap_parser *p, const char *buf, size_t len,
    size_t *consumed, const struct mt_imap_event **ev);
/* The last error, NUL-terminated, with the byte offset in the response. */
const char *mt_imap_parser_error(const struct mt_imap_parser *p);
/*
 * 1 when the parser is between responses. When the server closes the
 * connection and this is 0, the last response was cut short.
 */
int mt_imap_parser_idle(const struct mt_imap_parser *p);

enum mt_imap_failure mt_imap_code_failure(enum mt_imap_code_kind kind);
/* "ALERT", "UIDVALIDITY", ... ("" for NONE, "other" for OTHER). */
const char *mt_imap_code_name(enum mt_imap_code_kind kind);

/*
 * Command tags "A1", "A2", ...: format writes a NUL-terminated tag for
 * command number n (0 or -1 when it does not fit); parse maps a tag from a
 * TAGGED event back to n (0 or -1 when it is not one of ours).
 */
int mt_imap_tag_format(char *buf, size_t size, uint32_t n);
int mt_imap_tag_parse(struct mt_imap_str tag, uint32_t *n);

#endif
