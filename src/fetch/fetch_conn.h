/*
 * fetch_conn: the fetcher's connection to a mail server, from the host
 * name to a verified TLS session, then buffered reads and writes.
 *
 * Connecting: resolve (or take an IP literal), try each address in turn
 * (timeout_connect for each, covering TCP, the STARTTLS dialogue and the
 * handshake), and with starttls run the plaintext opening through the
 * STARTTLS machine (starttls.h, mode FOR_SELF) with the injection checks of
 * starttls_watch.h. With OCSP options, the verified chain is checked for
 * revocation (ocsp.h) before the connection opens. Network trouble tries
 * the next address; a refused or revoked certificate, a refused or missing
 * STARTTLS and an injection end the attempt at once (every address is the
 * same server name).
 *
 * Open: bytes from the server collect in `in` (the owner parses and
 * drains them); the owner appends commands to `out` and calls
 * ft_conn_flush(). Reading stops while `in` holds FT_CONN_IN_HIGH bytes or
 * more and while the owner has paused the connection (delivery
 * backpressure), so memory is bounded whatever the server sends. A server
 * silent for timeout_io seconds while not paused is an error.
 *
 * Callbacks, always from the event loop: open(arg) once TLS is up;
 * data(arg) after bytes were added to `in` (or eof became 1);
 * error(arg, status, why) once, after which the connection is dead (why is
 * already logged). The owner may call ft_conn_close() from any callback;
 * the struct itself stays the owner's (embedded), and nothing is called
 * back after close.
 */
#ifndef MAILTUNNEL_FETCH_CONN_H
#define MAILTUNNEL_FETCH_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mailtunnel/config.h"
#include "mailtunnel/fetch.h"
#include "mailtunnel/log.h"
#include "mailtunnel/net.h"
#include "mailtunnel/ocsp.h"
#include "mailtunnel/starttls.h"
#include "mailtunnel/starttls_watch.h"
#include "mailtunnel/stream.h"

struct evbuffer;
struct evdns_base;
struct evdns_getaddrinfo_request;

#define FT_CONN_IN_HIGH (256 * 1024)	/* stop reading above this */
#define FT_CONN_READ (64 * 1024)	/* one read */
#define FT_CONN_MAX_ADDRS 8

enum ft_conn_state {
	FT_C_IDLE,
	FT_C_RESOLVING,
	FT_C_CONNECTING,
	FT_C_STARTTLS,
	FT_C_HANDSHAKE,
	FT_C_OCSP,			/* TLS up: asking OCSP responders */
	FT_C_OPEN,
	FT_C_CLOSED,
};

struct ft_conn_cbs {
	void (*open)(void *arg);
	void (*data)(void *arg);
	void (*error)(void *arg, enum mt_fetch_status st, const char *why);
};

struct ft_conn {
	/* Set by the owner before ft_conn_start(). */
	struct event_base *base;
	struct evdns_base *dns;		/* NULL: resolve with our own */
	struct mt_tls_ctx *tls;
	const struct mt_ocsp_conf *ocsp;	/* NULL: no OCSP check */
	struct mt_ocsp_cache *ocsp_cache;
	const struct mt_log_ctx *log;
	const char *host;
	unsigned port;
	enum mt_protocol starttls;	/* MT_PROTO_NONE: TLS from the start */
	unsigned timeout_connect_s;
	unsigned timeout_io_s;
	struct ft_conn_cbs cb;
	void *arg;

	/* Read-only for the owner. */
	enum ft_conn_state state;
	struct evbuffer *in, *out;
	int eof;			/* the server closed its side */
	int paused;
	int via_starttls;		/* the greeting was read before TLS */
	uint64_t bytes_in;
	char addr[MT_NET_ADDRSTRLEN];	/* the address connected to */

	/* Private. */
	struct mt_stream s;
	int stream_open;
	struct event *timer;
	struct event *kick;
	struct evdns_base *own_dns;
	struct evdns_getaddrinfo_request *dns_req;
	struct mt_sockaddr addrs[FT_CONN_MAX_ADDRS];
	size_t naddrs, cur;
	struct mt_starttls *st;
	struct evbuffer *prelude;
	struct mt_starttls_watch watch;
	struct mt_ocsp *ocsp_check;
	struct timespec last;		/* last read, or resume */
	int failed;			/* an error waits to be reported */
	enum mt_fetch_status fail_status;
	char fail_why[512];
	char port_str[8];
};

/* Start connecting; 0, or -1 when memory runs out (nothing to close). */
int ft_conn_start(struct ft_conn *c);
/* Write what `out` holds, now as far as the socket takes it. */
void ft_conn_flush(struct ft_conn *c);
/* Stop (1) or resume (0) reading; resuming hands buffered bytes first. */
void ft_conn_pause(struct ft_conn *c, int on);
/* Drop the connection and free what it holds. Safe to call twice. */
void ft_conn_close(struct ft_conn *c);
/* Fail the connection from the owner's side (protocol error): logged,
 * then the error callback runs from the loop. */
void ft_conn_fail(struct ft_conn *c, enum mt_fetch_status st,
    const char *fmt, ...) MT_PRINTF(3, 4);

#endif
