/*
 * fetch/imap_internal: what the three parts of the IMAP response parser
 * share. imap_parse.c is the driver (input, buffering, literals, the body
 * stream); imap_resp.c reads one buffered response by recursive descent;
 * imap_search.c streams SEARCH and ESEARCH results byte by byte. Private to
 * src/fetch.
 */
#ifndef MAILTUNNEL_FETCH_IMAP_INTERNAL_H
#define MAILTUNNEL_FETCH_IMAP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mailtunnel/imap_parse.h"

/* State of the SEARCH/ESEARCH byte machine. */
struct imap_search_state {
	int st;
	int esearch;
	uint64_t num;
	int digits;
	uint32_t lo;			/* ESEARCH ALL: start of a range */
	int in_range;
	int item;			/* the ESEARCH item a value belongs to */
	unsigned depth;			/* skipping a parenthesized value */
	size_t skipped;			/* bytes skipped, against line_max */
	char word[64];
	size_t wlen;
	size_t n;			/* ranges waiting in r[] */
	struct mt_imap_range r[MT_IMAP_SEARCH_BATCH];
	struct mt_imap_search done;	/* ESEARCH summary so far */
};

struct mt_imap_parser {
	struct mt_imap_limits lim;
	int state;			/* S_* in imap_parse.c */
	char *buf;			/* the response so far (minus streamed
					   bodies), NUL-terminated */
	size_t cap;
	size_t blen;
	size_t nonlit;			/* bytes in buf outside literals */
	size_t littotal;		/* bytes in buf inside literals */
	uint64_t remaining;		/* of the literal being read */
	uint64_t resp_off;		/* bytes of this response before buf */
	int in_fetch;			/* buf continues a FETCH after a body */
	int prefix_done;		/* checked for "* SEARCH"/"* ESEARCH" */
	struct mt_imap_fetch fetch;	/* items before the streamed body */
	struct imap_search_state ss;
	struct mt_imap_event ev;
	char err[256];
};

/* The outcome of reading the buffered response. */
struct imap_resp_result {
	int pending;			/* stopped at a literal not yet read */
	int pending_body;		/* ...which is a FETCH body */
	uint64_t lit_size;
	struct mt_imap_fetch fetch;	/* FETCH items read so far */
	const char *err;		/* static reason */
	size_t err_pos;			/* offset in buf */
};

/*
 * Read p->buf[0..blen). final: the response is complete (it ends with a
 * line end and holds every literal); on success p->ev is filled. Not final:
 * the buffer ends with a literal announcement; the result says whether
 * that literal is a FETCH body. 0, or -1 with res->err.
 */
int mt_imap_resp_read(struct mt_imap_parser *p, int final,
    struct imap_resp_result *res);

/* Set p->err; the "at byte" offset counts from the start of the response. */
void mt_imap_set_error(struct mt_imap_parser *p, const char *what,
    uint64_t pos);

/* SEARCH/ESEARCH streaming: begin after the keyword, then feed bytes. */
void mt_imap_search_begin(struct mt_imap_parser *p, int esearch);
/* 0: go on; 1: p->ev holds an event (2 when it is the last); -1: error. */
int mt_imap_search_byte(struct mt_imap_parser *p, unsigned char c);

#endif
