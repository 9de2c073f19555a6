/*
 * tunnel: one plaintext client bridged to a TLS server.
 *
 * A worker owns a struct mt_tunnel_env (its event loop, its DNS resolver,
 * the list of its tunnels) and starts one tunnel per accepted client. The
 * tunnel owns the client socket from then on, and everything it creates;
 * it frees itself when both sides are done, after calling env->closed. It
 * holds a reference to its service for its whole life.
 */
#ifndef MAILTUNNEL_TUNNEL_H
#define MAILTUNNEL_TUNNEL_H

#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct evdns_base;
struct mt_service;
struct mt_tunnel;

struct mt_tunnel_env {
	struct event_base *base;
	struct evdns_base *dns;
	/* Called once per tunnel, just before it is freed. */
	void (*closed)(void *arg);
	void *arg;
	/* Maintained by the tunnel module. */
	struct mt_tunnel *head;
	size_t count;
	/* Connection attempts (DNS, TCP, TLS handshake) run at most
	 * MT_TUNNEL_CONNECTING_MAX at a time; the rest wait in line, so a
	 * burst of clients never holds a burst of half-done handshakes. */
	size_t connecting;
	struct mt_tunnel *wait_head, *wait_tail;
};

#define MT_TUNNEL_CONNECTING_MAX 32

/*
 * Start bridging client fd (accepted from peer). On failure the fd is
 * closed and -1 returned (logged).
 */
int mt_tunnel_start(struct mt_tunnel_env *env,
    struct mt_service *svc, int fd, const struct sockaddr *peer,
    socklen_t peerlen);

/*
 * Shutting down: a tunnel not yet connected ends now; an open one may go
 * on until its service's TIMEOUTclose, then ends.
 */
void mt_tunnel_drain_all(struct mt_tunnel_env *env);

/* End every tunnel now (second SIGTERM, or exit). */
void mt_tunnel_abort_all(struct mt_tunnel_env *env);

#endif
