/*
 * net: socket addresses, listening sockets, non-blocking connects and
 * socket options. Plain syscalls, no event loop: callers own every fd they
 * get and close it.
 */
#ifndef MAILTUNNEL_NET_H
#define MAILTUNNEL_NET_H

#include <stddef.h>
#include <sys/socket.h>

#include "mailtunnel/config.h"

struct mt_sockaddr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* "192.0.2.1:110" or "[2001:db8::1]:110" (or "?" if unprintable). */
#define MT_NET_ADDRSTRLEN 64
void mt_net_format(const struct sockaddr *sa, socklen_t len, char *buf,
    size_t size);

/* Whether host is an IPv4 or IPv6 literal (no brackets). */
int mt_net_is_ip(const char *host);

/*
 * Resolve an accept address, synchronously (start-up and reload only, in
 * the control thread). A missing host means every IPv4 address, as in
 * stunnel. *addrs is allocated (free it); on error, err says why.
 */
int mt_net_resolve_listen(const struct mt_hostport *hp,
    struct mt_sockaddr **addrs, size_t *n, char *err, size_t errsz);

/*
 * A listening, non-blocking, close-on-exec socket. reuseport lets several
 * workers each hold their own socket for the same address. Options for
 * 'a' (listening sockets) are applied before bind.
 */
int mt_net_listen(const struct mt_sockaddr *addr, int reuseport,
    const struct mt_sockopt *opts, size_t nopts, char *err, size_t errsz);

/*
 * Whether nobody listens on addr yet. SO_REUSEPORT would let a second
 * program (of the same user) share the port silently, so a new address is
 * first bound once without it: -1 with err set when that fails.
 */
int mt_net_probe_free(const struct mt_sockaddr *addr, char *err,
    size_t errsz);

/* Apply the options marked where ('a', 'l' or 'r'); -1 with err set. */
int mt_net_apply_sockopts(int fd, char where, const struct mt_sockopt *opts,
    size_t nopts, char *err, size_t errsz);

/*
 * Start a non-blocking connect. Returns the fd (connection in progress or
 * done: wait for writability and check mt_net_connect_result), or -1 with
 * errno set.
 */
int mt_net_connect_start(const struct sockaddr *sa, socklen_t len,
    const struct mt_sockopt *opts, size_t nopts);
/* 0 when the connect succeeded, else the errno value it failed with. */
int mt_net_connect_result(int fd);

/* TCP_NODELAY; errors are harmless and ignored (unix sockets). */
void mt_net_nodelay(int fd);

#endif
