/*
 * net: see include/mailtunnel/net.h.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailtunnel/net.h"

void
mt_net_format(const struct sockaddr *sa, socklen_t len, char *buf,
    size_t size)
{
	char host[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET &&
	    len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(buf, size, "%s:%u", host, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6 &&
	    len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, size, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else if (sa->sa_family == AF_UNIX) {
		snprintf(buf, size, "unix");
	} else {
		snprintf(buf, size, "?");
	}
}

int
mt_net_is_ip(const char *host)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, host, buf) == 1 ||
	    inet_pton(AF_INET6, host, buf) == 1;
}

int
mt_net_resolve_listen(const struct mt_hostport *hp, struct mt_sockaddr **addrs,
    size_t *n, char *err, size_t errsz)
{
	struct addrinfo hints, *res, *ai;
	size_t count = 0;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_ADDRCONFIG;
	hints.ai_family = hp->host == NULL ? AF_INET : AF_UNSPEC;
	if (hp->host != NULL && mt_net_is_ip(hp->host))
		hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
	if ((rc = getaddrinfo(hp->host, hp->port, &hints, &res)) != 0) {
		snprintf(err, errsz, "cannot resolve %s:%s: %s",
		    hp->host ? hp->host : "*", hp->port, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next)
		count++;
	if ((*addrs = calloc(count, sizeof(**addrs))) == NULL) {
		freeaddrinfo(res);
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	*n = 0;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		memcpy(&(*addrs)[*n].ss, ai->ai_addr, ai->ai_addrlen);
		(*addrs)[(*n)++].len = ai->ai_addrlen;
	}
	freeaddrinfo(res);
	return 0;
}

int
mt_net_apply_sockopts(int fd, char where, const struct mt_sockopt *opts,
    size_t nopts, char *err, size_t errsz)
{
	const struct mt_sockopt *so;
	struct linger lg;
	const void *val;
	socklen_t len;
	size_t i;

	for (i = 0; i < nopts; i++) {
		so = &opts[i];
		if (so->where != where)
			continue;
		if (so->sval != NULL) {
			val = so->sval;
			len = (socklen_t)strlen(so->sval) + 1;
		} else if (so->level == SOL_SOCKET && so->name == SO_LINGER) {
			lg.l_onoff = so->ival;
			lg.l_linger = so->ival2;
			val = &lg;
			len = sizeof(lg);
		} else {
			val = &so->ival;
			len = sizeof(so->ival);
		}
		if (setsockopt(fd, so->level, so->name, val, len) == -1) {
			snprintf(err, errsz, "socket option %s: %s", so->label,
			    strerror(errno));
			return -1;
		}
	}
	return 0;
}

static void
bind_error(const char *name, int err, char *buf, size_t size)
{
	snprintf(buf, size, "cannot listen on %s: %s%s", name, strerror(err),
	    err == EACCES ? " (ports below 1024 need root or "
	    "CAP_NET_BIND_SERVICE)" : err == EADDRINUSE ?
	    " (another program uses it)" : "");
}

int
mt_net_probe_free(const struct mt_sockaddr *addr, char *err, size_t errsz)
{
	char name[MT_NET_ADDRSTRLEN];
	int fd, one = 1, rc = 0;

	fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return 0;	/* mt_net_listen() will say why */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (addr->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&addr->ss, addr->len) == -1 &&
	    errno == EADDRINUSE) {
		mt_net_format((const struct sockaddr *)&addr->ss, addr->len,
		    name, sizeof(name));
		bind_error(name, errno, err, errsz);
		rc = -1;
	}
	close(fd);
	return rc;
}

int
mt_net_listen(const struct mt_sockaddr *addr, int reuseport,
    const struct mt_sockopt *opts, size_t nopts, char *err, size_t errsz)
{
	char name[MT_NET_ADDRSTRLEN];
	int fd, one = 1;

	mt_net_format((const struct sockaddr *)&addr->ss, addr->len, name,
	    sizeof(name));
	fd = socket(addr->ss.ss_family,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errsz, "socket for %s: %s", name, strerror(errno));
		goto err0;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1) {
		snprintf(err, errsz, "SO_REUSEPORT on %s: %s", name,
		    strerror(errno));
		goto err1;
	}
	/* "accept = :::110" means IPv6 only, as stunnel does. */
	if (addr->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (mt_net_apply_sockopts(fd, 'a', opts, nopts, err, errsz) == -1)
		goto err1;
	if (bind(fd, (const struct sockaddr *)&addr->ss, addr->len) == -1) {
		bind_error(name, errno, err, errsz);
		goto err1;
	}
	if (listen(fd, SOMAXCONN) == -1) {
		snprintf(err, errsz, "listen on %s: %s", name, strerror(errno));
		goto err1;
	}

	/* Success! */
	return fd;

err1:
	close(fd);
err0:
	return -1;
}

void
mt_net_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int
mt_net_connect_start(const struct sockaddr *sa, socklen_t len,
    const struct mt_sockopt *opts, size_t nopts)
{
	char err[256];
	int fd, saved;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1)
		return -1;
	mt_net_nodelay(fd);
	if (mt_net_apply_sockopts(fd, 'r', opts, nopts, err, sizeof(err)) == -1)
		goto fail;
	if (connect(fd, sa, len) == -1 && errno != EINPROGRESS)
		goto fail;
	return fd;

fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int
mt_net_connect_result(int fd)
{
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
		return errno;
	return soerr;
}
