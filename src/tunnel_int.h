/*
 * tunnel_int: the connection struct, shared by tunnel.c (bridging and
 * teardown), tunnel_connect.c (resolving, connecting, failover and the TLS
 * handshake) and tunnel_starttls.c (the plaintext dialogue before
 * STARTTLS). Nothing outside these files sees it.
 */
#ifndef MT_TUNNEL_INT_H
#define MT_TUNNEL_INT_H

#include <limits.h>
#include <stdint.h>
#include <time.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "mailtunnel/log.h"
#include "mailtunnel/net.h"
#include "mailtunnel/ocsp.h"
#include "mailtunnel/service.h"
#include "mailtunnel/starttls.h"
#include "mailtunnel/starttls_watch.h"
#include "mailtunnel/stream.h"
#include "mailtunnel/tunnel.h"

/* Per direction: stop reading the source above this many buffered bytes. */
#define MT_TUNNEL_HIGH_WATER (256 * 1024)
/* Client bytes kept while the server side is not connected yet. */
#define MT_TUNNEL_EARLY_MAX (64 * 1024)
/* Largest single read. */
#define MT_TUNNEL_IO_CHUNK (64 * 1024)
/* No deadline. */
#define MT_TUNNEL_NEVER ((time_t)LONG_MAX)
/* Reads per direction and callback before other connections get a turn. */
#define MT_TUNNEL_BUDGET 16

enum mt_tunnel_state {
	MT_T_WAITING,		/* waiting for a connect slot */
	MT_T_RESOLVING,		/* waiting for DNS */
	MT_T_CONNECTING,	/* TCP connect in progress */
	MT_T_STARTTLS,		/* plaintext dialogue up to STARTTLS */
	MT_T_HANDSHAKE,		/* TLS handshake in progress */
	MT_T_OCSP,		/* TLS up: asking OCSP responders */
	MT_T_RETRY_WAIT,	/* every target failed; waiting to retry */
	MT_T_OPEN,		/* bridging */
	MT_T_FLUSHING,		/* server done: flushing to the client */
	MT_T_LINGER,		/* flushed and shut down: draining the client */
};

/* Addresses of the target being tried; only while connecting. */
struct mt_tunnel_addrs {
	struct mt_sockaddr v[MT_TARGET_MAX_ADDRS];
	size_t n, cur;
};

struct mt_tunnel {
	struct mt_tunnel *prev, *next;	/* env list */
	struct mt_tunnel *wait_next;	/* env wait line */
	struct mt_tunnel_env *env;
	struct mt_service *svc;
	struct mt_log_ctx log;
	char peer[MT_NET_ADDRSTRLEN];
	enum mt_tunnel_state state;

	struct mt_stream client;	/* plaintext */
	struct mt_stream server;	/* TCP, then TLS once connected */
	struct evbuffer *up;		/* client -> server, not yet written */
	struct evbuffer *down;		/* server -> client, not yet written */
	struct event timer;
	time_t timer_due;

	/* protocol = ...: the dialogue before TLS (MT_T_STARTTLS only). */
	struct mt_starttls *st;
	struct evbuffer *prelude;	/* what the server said before TLS */
	char *replay;			/* the client's first bytes after TLS */
	size_t replay_len;
	enum mt_starttls_error fail;	/* the last failure (NONE: no server
					   answered): the client line */
	/* The server's TLS records while the handshake runs (STARTTLS). */
	struct mt_starttls_watch watch;

	/* Connecting: which target, which of its addresses. */
	struct evdns_getaddrinfo_request *dns_req;
	struct mt_ocsp *ocsp;		/* MT_T_OCSP only */
	struct mt_tunnel_addrs *addrs;
	size_t tried;			/* targets tried in this round */
	size_t target;			/* index into svc->targets */
	char server_addr[MT_NET_ADDRSTRLEN];
	struct timespec started;	/* monotonic */

	time_t last_active;		/* for TIMEOUTidle */
	time_t up_blocked;		/* since when the server takes nothing */
	time_t down_blocked;		/* since when the client takes nothing */
	uint64_t sent, received;	/* bytes to the server, to the client */
	unsigned server_open : 1;	/* server stream holds an fd */
	unsigned has_slot : 1;		/* counted in env->connecting */
	unsigned queued : 1;		/* in the env wait line */
	unsigned slot_ready : 1;	/* a slot was handed over */
	unsigned client_eof : 1;
	unsigned server_eof : 1;
	unsigned close_notify_sent : 1;
	unsigned draining : 1;
};

/* tunnel.c */
void mt_tunnel_open(struct mt_tunnel *t);
/* Before the server is up: give the client line, flush it, close. */
void mt_tunnel_refuse(struct mt_tunnel *t, const char *line);
void mt_tunnel_free(struct mt_tunnel *t);
void mt_tunnel_set_timer(struct mt_tunnel *t, unsigned long long ms);
time_t mt_tunnel_now(struct mt_tunnel *t);
void mt_tunnel_server_event(evutil_socket_t fd, short what, void *arg);

/* tunnel_connect.c */
void mt_tunnel_connect_begin(struct mt_tunnel *t);
void mt_tunnel_connect_release(struct mt_tunnel *t);
void mt_tunnel_connect_first(struct mt_tunnel *t);
void mt_tunnel_connect_step(struct mt_tunnel *t);
void mt_tunnel_connect_timeout(struct mt_tunnel *t);
void mt_tunnel_connect_cancel(struct mt_tunnel *t);
struct mt_target *mt_tunnel_target(struct mt_tunnel *t);
/* Put TLS on the server socket and start the handshake. */
void mt_tunnel_tls_begin(struct mt_tunnel *t);
/* This server is no use: close it, try the next address or target. */
void mt_tunnel_server_failed(struct mt_tunnel *t, int whole_target);

/* tunnel_starttls.c */
void mt_tunnel_starttls_begin(struct mt_tunnel *t);
void mt_tunnel_starttls_step(struct mt_tunnel *t);
void mt_tunnel_starttls_timeout(struct mt_tunnel *t);
void mt_tunnel_starttls_cancel(struct mt_tunnel *t);
/* After TLS is on the socket: report plaintext where TLS should be. */
void mt_tunnel_starttls_watch(struct mt_tunnel *t);
void mt_tunnel_starttls_unwatch(struct mt_tunnel *t);

#endif
