/*
 * pop3_client: the POP3 side of a fetch job (struct ft_proto
 * ft_pop3_proto). pop3_client.c logs in (greeting, CAPA, AUTH or
 * USER/PASS); pop3_session.c lists (UIDL, LIST), fetches (RETR), deletes
 * (DELE) and quits. Commands are pipelined when the server announces
 * PIPELINING (RFC 2449), one at a time otherwise; replies are matched to
 * commands through a queue of what is outstanding.
 */
#ifndef MAILTUNNEL_FETCH_POP3_CLIENT_H
#define MAILTUNNEL_FETCH_POP3_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "fetch/fetch_int.h"
#include "mailtunnel/pop3_parse.h"

/* Outstanding commands at most (pipelined). */
#define P3_QUEUE 64
/* RETRs kept outstanding with PIPELINING. */
#define P3_RETR_WINDOW 16
/* DELEs kept outstanding with PIPELINING. */
#define P3_DELE_WINDOW 64
/* Longest line outside a message (RFC 2449 allows 512). */
#define P3_LINE_MAX 8192

enum p3_cmd {
	P3_C_GREETING,
	P3_C_CAPA,
	P3_C_AUTH,		/* AUTH mech [initial response] */
	P3_C_AUTH_DATA,		/* the response after "+ " */
	P3_C_AUTH_ABORT,	/* after an OAuth error challenge */
	P3_C_USER,
	P3_C_PASS,
	P3_C_UIDL,
	P3_C_LIST,
	P3_C_RETR,
	P3_C_DELE,
	P3_C_QUIT,
};

struct p3_out {
	uint8_t cmd;		/* enum p3_cmd */
	uint32_t idx;		/* RETR, DELE: index into j->msgs */
};

struct p3 {
	struct p3_out q[P3_QUEUE];
	size_t qhead, qn;
	int in_body;		/* reading the multi-line part of q[qhead] */
	int body_skip;		/* RETR: discard the content */
	struct mt_pop3_ml ml;
	struct mt_pop3_capa capa;
	int capa_known;
	unsigned mech;		/* FT_AUTH_LOGIN or an MT_SASL_* bit */
	char oauth_error[128];	/* what the server's challenge said */
	size_t next;		/* next message to RETR or DELE */
	size_t outstanding;	/* RETRs or DELEs in flight */
	int listing_done;
	int quitting;
};

static inline struct p3 *
p3_of(struct mt_fetch *j)
{
	return j->ps;
}

/* pop3_client.c */
void p3_push(struct mt_fetch *j, enum p3_cmd cmd, uint32_t idx);
/* What a -ERR reply means, for a failed login or command. */
enum mt_fetch_status p3_failure(const struct mt_pop3_status_line *st,
    enum mt_fetch_status fallback);
void p3_login_reply(struct mt_fetch *j, enum p3_cmd cmd,
    const struct mt_pop3_status_line *st, const char *line, size_t len);

/* pop3_session.c */
/* The status line of the reply to q[qhead]; 0 go on, -1 stop. */
int p3_session_reply(struct mt_fetch *j, const struct p3_out *o,
    const struct mt_pop3_status_line *st, const char *line, size_t len);
/* One line of a multi-line UIDL or LIST reply (dot-unstuffed). */
int p3_listing_line(struct mt_fetch *j, enum p3_cmd cmd, const char *line,
    size_t len);
/* A multi-line UIDL or LIST reply ended. */
void p3_listing_end(struct mt_fetch *j, enum p3_cmd cmd);
/* Feed RETR content from conn.in; 1 when the message ended, 0 for more,
 * -1 when the job failed. */
int p3_retr_body(struct mt_fetch *j);
void p3_retr_ended(struct mt_fetch *j, const struct p3_out *o);
void p3_list(struct mt_fetch *j);
void p3_fetch(struct mt_fetch *j);
void p3_remove(struct mt_fetch *j);
void p3_logout(struct mt_fetch *j);

#endif
