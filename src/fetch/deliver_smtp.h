/*
 * deliver_smtp internals, shared by
 *   deliver_smtp.c        the targets' operations, the message queue,
 *                         backpressure and recovery
 *   deliver_smtp_conn.c   the connection: DNS, connect, TLS, reading and
 *                         writing, timeouts, failures
 *   deliver_smtp_proto.c  the dialogue: greeting, EHLO/LHLO, STARTTLS,
 *                         RSET, MAIL, RCPT, DATA, the final dot
 *   deliver_smtp_parse.c  pure functions: spec, replies, dot-stuffing
 *
 * A target owns one connection (struct rm_conn, inside struct rm_target)
 * and a queue of messages in the order they began. The message at the head
 * is the one whose transaction is (or will be) on the connection; the
 * others wait with their bytes in their own buffer. struct rm_msg hangs
 * from mt_deliver_msg's priv and is freed by the release operation.
 */
#ifndef MAILTUNNEL_DELIVER_SMTP_H
#define MAILTUNNEL_DELIVER_SMTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/util.h>

#include "fetch/deliver_priv.h"
#include "mailtunnel/config.h"
#include "mailtunnel/net.h"
#include "mailtunnel/stream.h"

struct evbuffer;
struct evdns_base;
struct evdns_getaddrinfo_request;
struct mt_tls_ctx;

#define RM_TIMEOUT_MS	300000		/* default wait for the server */
#define RM_PENDING_MAX	(16u << 20)	/* bytes a caller may pile up */
#define RM_REPLY_CAP	16384		/* one reply, all its lines */
#define RM_LINE_CAP	2048		/* one reply line */
#define RM_TEXT_MAX	300		/* reply text kept for messages */
#define RM_RECENT	64		/* outcomes remembered for recover */
#define RM_HOST_MAX	255

/* ---- deliver_smtp_parse.c ---- */

enum rm_kind { RM_SMTP, RM_LMTP };
enum rm_tls {
	RM_TLS_NONE,			/* unix socket, or no_starttls */
	RM_TLS_MAY,			/* STARTTLS when offered, unverified */
	RM_TLS_STARTTLS,		/* STARTTLS required, verified */
	RM_TLS_IMPLICIT,		/* TLS from the first byte, verified */
};

struct rm_spec {
	enum rm_kind kind;
	enum rm_tls tls;
	char host[RM_HOST_MAX + 1];	/* "" for a unix socket */
	char port[8];
	char path[108];			/* unix socket */
	char where[RM_HOST_MAX + 120];	/* "host:port" or the path, for logs */
};

/* scheme as in the spec ("smtp+starttls"), arg what follows its colon. */
int rm_spec_parse(const char *scheme, const char *arg, struct rm_spec *out,
    char *err, size_t errsz);

#define RM_CAP_STARTTLS		0x01
#define RM_CAP_SIZE		0x02
#define RM_CAP_8BITMIME		0x04
#define RM_CAP_PIPELINING	0x08

struct rm_reply {
	int code;			/* 200-599 */
	unsigned lines;
	char text[RM_TEXT_MAX + 1];	/* first line after the code, printable */
	unsigned caps;			/* EHLO keywords on lines 2.. */
	uint64_t size_max;		/* SIZE n (0: none given) */
};

enum { RM_REPLY_BAD = -1, RM_REPLY_MORE = 0, RM_REPLY_DONE = 1 };
/*
 * One reply from the start of buf: DONE with *used its length, MORE when
 * it is not complete yet (nothing used), BAD with err saying why, as the
 * object of "SERVER sent ...": not three digits, codes that differ between
 * lines, a line over RM_LINE_CAP, more than RM_REPLY_CAP bytes.
 */
int rm_reply_parse(const char *buf, size_t len, struct rm_reply *r,
    size_t *used, char *err, size_t errsz);

/* CRLF line ends for any of CRLF, LF or CR, and dot-stuffing. */
struct rm_dot {
	int mid;			/* not at the start of a line */
	int cr;				/* a CR is held */
};
int rm_dot_write(struct rm_dot *x, struct evbuffer *out, const char *p,
    size_t n);
/* Close an open last line (CRLF); the final "." line is not added. */
int rm_dot_finish(struct rm_dot *x, struct evbuffer *out);

/* ---- the target ---- */

enum rm_state {
	RS_DOWN,
	RS_RESOLVING,
	RS_CONNECTING,
	RS_TLS,				/* handshake (implicit or STARTTLS) */
	RS_GREETING,
	RS_EHLO,
	RS_HELO,			/* SMTP servers without EHLO */
	RS_STARTTLS,
	RS_IDLE,
	RS_RSET,
	RS_MAIL,
	RS_RCPT,
	RS_DATA,
	RS_BODY,			/* the message is being sent */
	RS_PREPARED,			/* all of it but the final dot */
	RS_DOT,				/* the final dot sent */
};

enum rm_outcome_kind {
	RO_NOT_SENT,			/* the final dot never left */
	RO_REFUSED,			/* the server answered it with an error */
	RO_UNCERTAIN,			/* it left; no answer came */
	RO_ACCEPTED,
};

struct rm_outcome {
	char token[MT_DELIVER_TOKEN_MAX + 1];
	enum rm_outcome_kind kind;
};

struct rm_msg {
	struct mt_deliver_msg *m;
	struct rm_target *rt;
	struct rm_msg *next;
	int queued;			/* in rt's queue */
	struct evbuffer *data;		/* ready to send, not yet sent */
	struct dl_hdr hdr;
	struct rm_dot dot;
	struct dl_envelope env;
	int ready;			/* the header is complete */
	int ended;			/* no more data */
	int broken;			/* connection lost after end */
	int retried;			/* reconnected once already */
	int armed;			/* pending rose above lowat */
};

struct rm_conn {
	struct mt_stream s;
	int up;				/* s holds a socket */
	struct evbuffer *in, *out;
	enum rm_state state;
	int tls_on;
	int starttls_tried;
	unsigned caps;
	uint64_t size_max;
	int used;			/* a transaction ended on it */
	int dirty;			/* RSET before the next MAIL */
	struct event *timer;
	struct evutil_addrinfo *ai, *next_ai;
	struct evdns_getaddrinfo_request *dns_req;
	char addr[MT_NET_ADDRSTRLEN];
	char last_err[200];		/* of the last address tried */
};

struct rm_target {
	struct mt_deliver *t;
	struct rm_spec spec;
	struct rm_conn c;
	struct rm_msg *head;
	struct event *kick;
	struct mt_tls_ctx *tls;
	struct evdns_base *dns;
	int own_dns;
	int lazy;			/* connect only for a ready message */
	unsigned timeout_ms;
	char helo[MT_CONFIG_EHLO_MAX + 1];
	struct rm_outcome recent[RM_RECENT];
	unsigned nrecent;
	unsigned long long seq;
};

/* deliver_smtp.c */
void rm_kick(struct rm_target *rt);
void rm_dequeue(struct rm_msg *rm);
void rm_drain_check(struct rm_msg *rm);
void rm_remember(struct rm_target *rt, const char *token,
    enum rm_outcome_kind kind);
size_t rm_pending(const struct rm_msg *rm);
/* The head message failed for this reason (kind as dl_fail's err). */
void rm_msg_fail(struct rm_msg *rm, int kind, const char *reason);
/* All but the final dot is out: settle end. */
void rm_prepared(struct rm_msg *rm);
/* The reply to the dot: reason NULL (accepted) or why not. */
void rm_committed(struct rm_msg *rm, int kind, const char *reason);

/* deliver_smtp_conn.c */
int rm_conn_init(struct rm_target *rt);
int rm_conn_start(struct rm_target *rt);
void rm_conn_close(struct rm_target *rt, int quit);
void rm_conn_fail(struct rm_target *rt, int kind, int retry,
    const char *fmt, ...) MT_PRINTF(4, 5);
int rm_conn_flush(struct rm_target *rt);
int rm_conn_tls(struct rm_target *rt);
void rm_conn_wait(struct rm_target *rt, unsigned ms);
int rm_send(struct rm_target *rt, enum rm_state next, const char *fmt, ...)
    MT_PRINTF(3, 4);
const char *rm_name(const struct rm_target *rt);

/* deliver_smtp_proto.c */
void rm_proto_reply(struct rm_target *rt, const struct rm_reply *r);
void rm_proto_tls_up(struct rm_target *rt);
void rm_proto_begin(struct rm_target *rt, struct rm_msg *rm);
void rm_proto_body(struct rm_target *rt);
const char *rm_proto_waiting_for(const struct rm_target *rt);

#endif
