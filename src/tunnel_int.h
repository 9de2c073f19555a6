/*
 * tunnel_int: the connection struct, shared by tunnel.c (streaming and
 * teardown), tunnel_connect.c (resolving, connecting, failover and the
 * TLS handshake) and tunnel_starttls.c (the plaintext dialogue before
 * STARTTLS). Nothing outside these files sees it.
 */
#ifndef MT_TUNNEL_INT_H
#define MT_TUNNEL_INT_H

#include <stdint.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "mailtunnel/log.h"
#include "mailtunnel/net.h"
#include "mailtunnel/service.h"
#include "mailtunnel/starttls.h"
#include "mailtunnel/tunnel.h"

/* Per direction: stop reading the source above this, resume at half. */
#define MT_TUNNEL_HIGH_WATER (256 * 1024)
/* Client bytes kept while the server side is not connected yet. */
#define MT_TUNNEL_EARLY_MAX (64 * 1024)
/* Largest single read and write on a socket. */
#define MT_TUNNEL_IO_CHUNK (128 * 1024)

enum mt_tunnel_state {
	MT_T_RESOLVING,		/* waiting for DNS */
	MT_T_CONNECTING,	/* TCP connect in progress */
	MT_T_STARTTLS,		/* plaintext dialogue up to STARTTLS */
	MT_T_HANDSHAKE,		/* TLS handshake in progress */
	MT_T_RETRY_WAIT,	/* every target failed; waiting to retry */
	MT_T_OPEN,		/* bridging */
	MT_T_FLUSHING,		/* server done: flushing to the client */
	MT_T_LINGER,		/* flushed and shut down: draining the client */
};

struct mt_tunnel {
	struct mt_tunnel *prev, *next;	/* env list */
	struct mt_tunnel_env *env;
	struct mt_service *svc;
	struct mt_log_ctx log;
	char peer[MT_NET_ADDRSTRLEN];
	enum mt_tunnel_state state;

	struct bufferevent *client;	/* plaintext, owns the client fd */
	struct bufferevent *server;	/* TLS, owns fd and SSL once created */
	SSL *ssl;			/* borrowed from server */
	int server_fd;			/* during MT_T_CONNECTING */
	struct event *connect_ev;	/* server_fd writable */
	struct event *timer;		/* deadline of the current state */
	struct evdns_getaddrinfo_request *dns_req;

	/* protocol = ...: the dialogue before TLS (MT_T_STARTTLS only). */
	struct bufferevent *plain;	/* reads server_fd; does not own it */
	struct mt_starttls *st;
	char *replay;			/* the client's first bytes after TLS */
	size_t replay_len;
	char *injection;		/* why the handshake was cut short */
	enum mt_starttls_error fail;	/* the last failure (NONE: no server
					   answered): the client line */

	/* Failover: which target, which of its addresses. */
	size_t tried;			/* targets tried in this round */
	size_t target;			/* index into svc->targets */
	struct mt_sockaddr addrs[MT_TARGET_MAX_ADDRS];
	size_t naddrs, addr;
	char server_addr[MT_NET_ADDRSTRLEN];
	struct timespec started;	/* monotonic, for retry and stats */

	time_t last_active;		/* for TIMEOUTidle */
	uint64_t up, down;		/* bytes client->server, server->client */
	unsigned client_eof : 1;	/* client shut its side */
	unsigned server_eof : 1;	/* server shut its side */
	unsigned close_notify_sent : 1;
	unsigned draining : 1;
	/* The server's TLS records while the handshake runs (STARTTLS). */
	struct mt_tunnel_records {
		unsigned char hdr[5];	/* the header being read */
		unsigned have;		/* bytes of it so far */
		size_t left;		/* bytes of the record's body to skip */
		unsigned seen;		/* whole headers so far */
	} records;
};

/* tunnel.c */
void mt_tunnel_open(struct mt_tunnel *t);
/* Before the server is up: give the client line, flush it, close. */
void mt_tunnel_refuse(struct mt_tunnel *t, const char *line);
void mt_tunnel_free(struct mt_tunnel *t);
void mt_tunnel_set_timer(struct mt_tunnel *t, unsigned long long ms);
time_t mt_tunnel_now(struct mt_tunnel *t);

/* tunnel_connect.c */
void mt_tunnel_connect_first(struct mt_tunnel *t);
void mt_tunnel_connect_timeout(struct mt_tunnel *t);
void mt_tunnel_connect_cancel(struct mt_tunnel *t);
void mt_tunnel_handshake_event(struct bufferevent *bev, short what,
    void *arg);
struct mt_target *mt_tunnel_target(struct mt_tunnel *t);
/* Start TLS on server_fd; -1 (logged) leaves the fd with the tunnel. */
int mt_tunnel_tls_begin(struct mt_tunnel *t);
/* This server is no use: close it, try the next address or target. */
void mt_tunnel_server_failed(struct mt_tunnel *t, int whole_target);

/* tunnel_starttls.c */
void mt_tunnel_starttls_begin(struct mt_tunnel *t);
void mt_tunnel_starttls_timeout(struct mt_tunnel *t);
void mt_tunnel_starttls_cancel(struct mt_tunnel *t);
/* After mt_tunnel_tls_begin(): report plaintext where TLS should be. */
void mt_tunnel_starttls_watch(struct mt_tunnel *t);
void mt_tunnel_starttls_unwatch(struct mt_tunnel *t);

#endif
