/*
 * fetch/imap_rd: the recursive-descent reader shared by imap_resp.c
 * (responses) and imap_items.c (codes, capabilities, flags, FETCH items).
 * Private to src/fetch. Every rd_* function returns 0, or -1 after
 * recording the first failure (or a pending literal) in r->res.
 */
#ifndef MAILTUNNEL_FETCH_IMAP_RD_H
#define MAILTUNNEL_FETCH_IMAP_RD_H

#include <stddef.h>
#include <stdint.h>

#include "imap_internal.h"

struct rd {
	struct mt_imap_parser *p;
	char *b;			/* the buffered response */
	size_t len;
	size_t pos;
	int final;			/* see imap_resp.c */
	unsigned depth;			/* of parenthesized lists */
	struct imap_resp_result *res;
	struct mt_imap_event *ev;
};

int rd_fail(struct rd *r, const char *what);
int rd_peek(const struct rd *r);
int rd_char(struct rd *r, char c, const char *what);
int rd_is_atom_char(int c);
int rd_eol(struct rd *r);
int rd_atom(struct rd *r, struct mt_imap_str *s, const char *what);
int rd_is(const struct mt_imap_str *s, const char *word);
int rd_number(struct rd *r, uint64_t max, uint64_t *v, const char *what);
int rd_nz32(struct rd *r, uint32_t *v, const char *what);
int rd_quoted(struct rd *r, struct mt_imap_str *s);
/* body: a pending literal here is a FETCH body (to be streamed). */
int rd_literal(struct rd *r, struct mt_imap_str *s, int body);
int rd_string(struct rd *r, struct mt_imap_str *s);
int rd_astring(struct rd *r, struct mt_imap_str *s, const char *what);
int rd_skip_value(struct rd *r);

/* imap_items.c */
int rd_code(struct rd *r, struct mt_imap_code *code);
int rd_caps(struct rd *r, struct mt_imap_caps *caps);
/* list_attrs: LIST attributes rather than message flags. */
int rd_flag_list(struct rd *r, int list_attrs, unsigned *bits,
    unsigned *others);
/* cont: continue after a streamed body (no "(" to open). */
int rd_msg_att(struct rd *r, int cont);

#endif
