/*
 * config_net_types: option types for addresses (accept, connect) and
 * socket options. Addresses stay text here; net resolves them.
 */
#include "config.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "config_int.h"
#include "mailtunnel/util.h"

#define SVC(obj) ((struct mt_service_conf *)(obj))
#define CSVC(obj) ((const struct mt_service_conf *)(obj))

static int
port_valid(const char *port)
{
	unsigned long long n;

	if (mt_parse_uint(port, 1, 65535, &n) == 0)
		return 1;
	if (port[0] >= '0' && port[0] <= '9')
		return 0;
	return getservbyname(port, "tcp") != NULL;
}

int
mt_config_parse_hostport(const char *s, struct mt_hostport *hp,
    const char **why)
{
	const char *colon, *host = s, *port;
	size_t hostlen;
	unsigned char addr[16];

	memset(hp, 0, sizeof(*hp));
	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL || close[1] != ':') {
			*why = "expected [IPv6]:port";
			return -1;
		}
		host = s + 1;
		hostlen = (size_t)(close - host);
		port = close + 2;
	} else if ((colon = strrchr(s, ':')) == NULL) {
		host = NULL;
		hostlen = 0;
		port = s;
	} else {
		hostlen = (size_t)(colon - s);
		port = colon + 1;
	}
	if (host != NULL && hostlen == 0) {
		*why = "host missing before ':'";
		return -1;
	}
	if (*port == '\0' || !port_valid(port)) {
		*why = "port must be a number from 1 to 65535 or a service name "
		    "from /etc/services";
		return -1;
	}
	if (host != NULL && (hp->host = strndup(host, hostlen)) == NULL)
		goto nomem;
	if (hp->host != NULL && strchr(hp->host, ':') != NULL &&
	    inet_pton(AF_INET6, hp->host, addr) != 1) {
		*why = "not a valid IPv6 address (write IPv6 as [address]:port)";
		goto err;
	}
	if (hp->host != NULL && strpbrk(hp->host, " \t/[]") != NULL) {
		*why = "not a valid host name or address";
		goto err;
	}
	if ((hp->port = strdup(port)) == NULL)
		goto nomem;

	/* Success! */
	return 0;

nomem:
	*why = "out of memory";
err:
	mt_hostport_free(hp);
	return -1;
}

void
mt_hostport_free(struct mt_hostport *hp)
{
	free(hp->host);
	free(hp->port);
	hp->host = hp->port = NULL;
}

static int
hostport_copy_one(struct mt_hostport *d, const struct mt_hostport *s)
{
	memset(d, 0, sizeof(*d));
	if (s->host != NULL && (d->host = strdup(s->host)) == NULL)
		return -1;
	if (s->port != NULL && (d->port = strdup(s->port)) == NULL) {
		mt_hostport_free(d);
		return -1;
	}
	return 0;
}

static void
hostport_print_one(const char *name, const struct mt_hostport *hp, FILE *out)
{
	if (hp->host == NULL)
		fprintf(out, "%s = %s\n", name, hp->port);
	else if (strchr(hp->host, ':') != NULL)
		fprintf(out, "%s = [%s]:%s\n", name, hp->host, hp->port);
	else
		fprintf(out, "%s = %s:%s\n", name, hp->host, hp->port);
}

/* ---- accept ---- */

static int
accept_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	struct mt_hostport hp;
	const char *why = "invalid value";

	if (mt_config_parse_hostport(value, &hp, &why) == -1) {
		mt_opt_error(where, opt, "'%s': %s", value, why);
		return -1;
	}
	if (hp.host == NULL)
		mt_opt_warning(where, opt, "'%s' listens on all addresses, so "
		    "other machines can use this plaintext tunnel; write "
		    "accept = 127.0.0.1:%s to keep it local", value, hp.port);
	mt_hostport_free(&SVC(obj)->accept);
	SVC(obj)->accept = hp;
	return 0;
}

static void
accept_reset(const struct mt_option *opt, void *obj)
{
	mt_hostport_free(&SVC(obj)->accept);
}

static int
accept_copy(const struct mt_option *opt, void *dst, const void *src)
{
	return hostport_copy_one(&SVC(dst)->accept, &CSVC(src)->accept);
}

static void
accept_print(const struct mt_option *opt, const void *obj, FILE *out)
{
	if (CSVC(obj)->accept.port != NULL)
		hostport_print_one(opt->name, &CSVC(obj)->accept, out);
}

const struct mt_opt_type mt_type_accept = {
	"[host:]port", accept_parse, accept_reset, accept_copy, accept_print
};

/* ---- connect (repeatable: failover targets) ---- */

static int
connect_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	struct mt_service_conf *svc = SVC(obj);
	struct mt_hostport hp, *v;
	const char *why = "invalid value";

	if (mt_config_parse_hostport(value, &hp, &why) == -1) {
		mt_opt_error(where, opt, "'%s': %s", value, why);
		return -1;
	}
	v = realloc(svc->connect, (svc->nconnect + 1) * sizeof(*v));
	if (v == NULL) {
		mt_hostport_free(&hp);
		mt_opt_error(where, opt, "out of memory");
		return -1;
	}
	v[svc->nconnect++] = hp;
	svc->connect = v;
	return 0;
}

static void
connect_reset(const struct mt_option *opt, void *obj)
{
	struct mt_service_conf *svc = SVC(obj);
	size_t i;

	for (i = 0; i < svc->nconnect; i++)
		mt_hostport_free(&svc->connect[i]);
	free(svc->connect);
	svc->connect = NULL;
	svc->nconnect = 0;
}

static int
connect_copy(const struct mt_option *opt, void *dst, const void *src)
{
	struct mt_service_conf *d = SVC(dst);
	const struct mt_service_conf *s = CSVC(src);
	size_t i;

	d->connect = NULL;
	d->nconnect = 0;
	if (s->nconnect == 0)
		return 0;
	if ((d->connect = calloc(s->nconnect, sizeof(*d->connect))) == NULL)
		return -1;
	for (i = 0; i < s->nconnect; i++) {
		if (hostport_copy_one(&d->connect[i], &s->connect[i]) == -1)
			return -1;
		d->nconnect++;
	}
	return 0;
}

static void
connect_print(const struct mt_option *opt, const void *obj, FILE *out)
{
	size_t i;

	for (i = 0; i < CSVC(obj)->nconnect; i++)
		hostport_print_one(opt->name, &CSVC(obj)->connect[i], out);
}

const struct mt_opt_type mt_type_connect = {
	"[host:]port", connect_parse, connect_reset, connect_copy, connect_print
};

/* ---- socket = a|l|r:NAME=VALUE ---- */

enum sockopt_kind { SO_INT, SO_LINGER_KIND, SO_STRING };

static const struct {
	const char *name;
	int level;
	int optname;
	enum sockopt_kind kind;
} sockopts[] = {
	{ "SO_KEEPALIVE", SOL_SOCKET, SO_KEEPALIVE, SO_INT },
	{ "SO_LINGER", SOL_SOCKET, SO_LINGER, SO_LINGER_KIND },
	{ "SO_OOBINLINE", SOL_SOCKET, SO_OOBINLINE, SO_INT },
	{ "SO_RCVBUF", SOL_SOCKET, SO_RCVBUF, SO_INT },
	{ "SO_SNDBUF", SOL_SOCKET, SO_SNDBUF, SO_INT },
	{ "SO_RCVLOWAT", SOL_SOCKET, SO_RCVLOWAT, SO_INT },
	{ "SO_REUSEADDR", SOL_SOCKET, SO_REUSEADDR, SO_INT },
	{ "SO_BINDTODEVICE", SOL_SOCKET, SO_BINDTODEVICE, SO_STRING },
	{ "SO_PRIORITY", SOL_SOCKET, SO_PRIORITY, SO_INT },
	{ "SO_MARK", SOL_SOCKET, SO_MARK, SO_INT },
	{ "TCP_NODELAY", IPPROTO_TCP, TCP_NODELAY, SO_INT },
	{ "TCP_KEEPCNT", IPPROTO_TCP, TCP_KEEPCNT, SO_INT },
	{ "TCP_KEEPIDLE", IPPROTO_TCP, TCP_KEEPIDLE, SO_INT },
	{ "TCP_KEEPINTVL", IPPROTO_TCP, TCP_KEEPINTVL, SO_INT },
	{ "TCP_MAXSEG", IPPROTO_TCP, TCP_MAXSEG, SO_INT },
	{ "TCP_USER_TIMEOUT", IPPROTO_TCP, TCP_USER_TIMEOUT, SO_INT },
	{ "TCP_FASTOPEN", IPPROTO_TCP, TCP_FASTOPEN, SO_INT },
	{ "IP_TOS", IPPROTO_IP, IP_TOS, SO_INT },
	{ "IP_TTL", IPPROTO_IP, IP_TTL, SO_INT },
	{ "IP_FREEBIND", IPPROTO_IP, IP_FREEBIND, SO_INT },
	{ "IPV6_V6ONLY", IPPROTO_IPV6, IPV6_V6ONLY, SO_INT },
};

static int
sockopt_value(struct mt_sockopt *so, enum sockopt_kind kind, const char *v,
    const char **why)
{
	unsigned long long a, b;
	const char *colon;
	char first[16];

	switch (kind) {
	case SO_INT:
		if (mt_parse_uint(v, 0, 0x7FFFFFFF, &a) == -1) {
			*why = "expected a number";
			return -1;
		}
		so->ival = (int)a;
		return 0;
	case SO_LINGER_KIND:
		if ((colon = strchr(v, ':')) == NULL ||
		    (size_t)(colon - v) >= sizeof(first)) {
			*why = "expected ONOFF:SECONDS, for example 1:60";
			return -1;
		}
		memcpy(first, v, (size_t)(colon - v));
		first[colon - v] = '\0';
		if (mt_parse_uint(first, 0, 1, &a) == -1 ||
		    mt_parse_uint(colon + 1, 0, 65535, &b) == -1) {
			*why = "expected ONOFF:SECONDS, for example 1:60";
			return -1;
		}
		so->ival = (int)a;
		so->ival2 = (int)b;
		return 0;
	case SO_STRING:
		if (*v == '\0' || strlen(v) >= IF_NAMESIZE) {
			*why = "expected an interface name";
			return -1;
		}
		if ((so->sval = strdup(v)) == NULL) {
			*why = "out of memory";
			return -1;
		}
		return 0;
	}
	return -1;
}

static int
sockopt_parse_one(const char *value, struct mt_sockopt *so, const char **why)
{
	const char *eq;
	size_t i, len;

	memset(so, 0, sizeof(*so));
	if (strchr("alr", value[0]) == NULL || value[0] == '\0' ||
	    value[1] != ':') {
		*why = "expected a:, l: or r: (listening, local client or "
		    "remote server socket) before the option";
		return -1;
	}
	so->where = value[0];
	value += 2;
	if ((eq = strchr(value, '=')) == NULL) {
		*why = "expected NAME=VALUE";
		return -1;
	}
	len = (size_t)(eq - value);
	for (i = 0; i < MT_ARRAY_LEN(sockopts); i++) {
		if (strlen(sockopts[i].name) == len &&
		    strncasecmp(value, sockopts[i].name, len) == 0)
			break;
	}
	if (i == MT_ARRAY_LEN(sockopts)) {
		*why = "unknown socket option (supported: SO_KEEPALIVE, "
		    "SO_LINGER, SO_RCVBUF, SO_SNDBUF, SO_BINDTODEVICE, "
		    "TCP_NODELAY, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, "
		    "TCP_USER_TIMEOUT, IP_TOS and more; see mailtunnel.conf(5))";
		return -1;
	}
	so->level = sockopts[i].level;
	so->name = sockopts[i].optname;
	so->label = sockopts[i].name;
	return sockopt_value(so, sockopts[i].kind, eq + 1, why);
}

static int
sockopt_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	struct mt_service_conf *svc = SVC(obj);
	struct mt_sockopt so, *v;
	const char *why = "invalid value";

	if (sockopt_parse_one(value, &so, &why) == -1) {
		mt_opt_error(where, opt, "'%s': %s", value, why);
		return -1;
	}
	v = realloc(svc->sockopts, (svc->nsockopts + 1) * sizeof(*v));
	if (v == NULL) {
		free(so.sval);
		mt_opt_error(where, opt, "out of memory");
		return -1;
	}
	v[svc->nsockopts++] = so;
	svc->sockopts = v;
	return 0;
}

static void
sockopt_reset(const struct mt_option *opt, void *obj)
{
	struct mt_service_conf *svc = SVC(obj);
	size_t i;

	for (i = 0; i < svc->nsockopts; i++)
		free(svc->sockopts[i].sval);
	free(svc->sockopts);
	svc->sockopts = NULL;
	svc->nsockopts = 0;
}

static int
sockopt_copy(const struct mt_option *opt, void *dst, const void *src)
{
	struct mt_service_conf *d = SVC(dst);
	const struct mt_service_conf *s = CSVC(src);
	size_t i;

	d->sockopts = NULL;
	d->nsockopts = 0;
	if (s->nsockopts == 0)
		return 0;
	if ((d->sockopts = calloc(s->nsockopts, sizeof(*d->sockopts))) == NULL)
		return -1;
	for (i = 0; i < s->nsockopts; i++) {
		d->sockopts[i] = s->sockopts[i];
		d->sockopts[i].sval = NULL;
		if (s->sockopts[i].sval != NULL &&
		    (d->sockopts[i].sval = strdup(s->sockopts[i].sval)) == NULL)
			return -1;
		d->nsockopts++;
	}
	return 0;
}

static void
sockopt_print(const struct mt_option *opt, const void *obj, FILE *out)
{
	const struct mt_service_conf *svc = CSVC(obj);
	const struct mt_sockopt *so;
	size_t i;

	for (i = 0; i < svc->nsockopts; i++) {
		so = &svc->sockopts[i];
		if (so->sval != NULL)
			fprintf(out, "%s = %c:%s=%s\n", opt->name, so->where,
			    so->label, so->sval);
		else if (so->level == SOL_SOCKET && so->name == SO_LINGER)
			fprintf(out, "%s = %c:%s=%d:%d\n", opt->name, so->where,
			    so->label, so->ival, so->ival2);
		else
			fprintf(out, "%s = %c:%s=%d\n", opt->name, so->where,
			    so->label, so->ival);
	}
}

const struct mt_opt_type mt_type_sockopt = {
	"a|l|r:NAME=VALUE", sockopt_parse, sockopt_reset, sockopt_copy,
	sockopt_print
};
