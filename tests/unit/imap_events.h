/*
 * Test helper: run an IMAP transcript through the parser with chosen chunk
 * boundaries and write every event as one line of text, so transcripts can
 * be compared with what is expected and with each other. Consecutive
 * FETCH_DATA events are merged into one line, since where a body is cut
 * depends on the chunks.
 */
#ifndef TESTS_UNIT_IMAP_EVENTS_H
#define TESTS_UNIT_IMAP_EVENTS_H

#include <stddef.h>

#include "mailtunnel/imap_parse.h"

struct imap_run {
	char *log;			/* malloc'd, NUL-terminated */
	size_t len, cap;
	int rc;				/* last feed result: 0 or -1 */
	char error[256];		/* parser error when rc == -1 */
	size_t consumed;		/* input bytes used */
	int idle;			/* parser idle at the end */
	size_t data_by_ref;		/* FETCH_DATA pointing into the input */
	size_t data_events;
	int in_data;
};

/*
 * Feed in[0..n) with chunk ends at cuts[0..ncuts) (ascending, < n), then
 * the rest. lim may be NULL.
 */
void imap_run(struct imap_run *r, const char *in, size_t n,
    const size_t *cuts, size_t ncuts, const struct mt_imap_limits *lim);
/* Every 2-chunk split and byte by byte give the same log as one chunk;
   returns the one-chunk run (free with imap_run_free). */
void imap_run_all_splits(struct imap_run *r, const char *in, size_t n,
    const struct mt_imap_limits *lim);
void imap_run_free(struct imap_run *r);

/*
 * Transcripts in tests are written with their literals marked: LIT("abc")
 * becomes "{3}\r\nabc", LITP("abc") "{3+}\r\nabc". expand() returns a
 * malloc'd copy with the marks replaced and stores its length.
 */
#define LIT(s) "\001" s "\002"
#define LITP(s) "\003" s "\002"
char *imap_expand(const char *t, size_t *n);

#endif
