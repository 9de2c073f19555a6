/*
 * generation: see daemon_int.h.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "daemon_int.h"
#include "mailtunnel/log.h"
#include "mailtunnel/service.h"

static void
bound_unref(struct mt_bound *b)
{
	size_t i;

	if (b == NULL || atomic_fetch_sub(&b->refs, 1) != 1)
		return;
	for (i = 0; i < b->nfds; i++)
		if (b->fds[i] != -1)
			close(b->fds[i]);
	free(b);
}

static int
same_addr(const struct mt_sockaddr *a, const struct mt_sockaddr *b)
{
	return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

static unsigned
port_of(const struct mt_sockaddr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)(const void *)&a->ss)
		    ->sin_port);
	return ntohs(((const struct sockaddr_in6 *)(const void *)&a->ss)
	    ->sin6_port);
}

/* Whether the previous generation listens on addr's port at all. */
static int
port_held(const struct mt_generation *prev, const struct mt_sockaddr *addr)
{
	size_t i;

	for (i = 0; prev != NULL && i < prev->nbound; i++)
		if (prev->bound[i]->addr.ss.ss_family == addr->ss.ss_family &&
		    port_of(&prev->bound[i]->addr) == port_of(addr))
			return 1;
	return 0;
}

/* An address bound by the previous generation, or a new binding. */
static struct mt_bound *
bind_addr(const struct mt_service_conf *conf, const struct mt_sockaddr *addr,
    const struct mt_generation *prev, size_t nworkers,
    struct mt_config_report *report)
{
	struct mt_bound *b;
	char err[512];
	size_t i;

	for (i = 0; prev != NULL && i < prev->nbound; i++) {
		b = prev->bound[i];
		if (same_addr(&b->addr, addr) && b->nfds == nworkers) {
			for (size_t k = 0; k < b->nfds; k++)
				if (mt_net_apply_sockopts(b->fds[k], 'a',
				    conf->sockopts, conf->nsockopts, err,
				    sizeof(err)) == -1)
					mt_log(MT_LOG_WARNING, "[%s] %s",
					    conf->name, err);
			atomic_fetch_add(&b->refs, 1);
			return b;
		}
	}
	/* Our own sockets on this port would fail the probe: skip it then. */
	if (!port_held(prev, addr) &&
	    mt_net_probe_free(addr, err, sizeof(err)) == -1) {
		mt_config_report_add(report, conf->file,
		    mt_service_conf_line(conf, "accept"), 1, "[%s] %s",
		    conf->name, err);
		return NULL;
	}
	if ((b = calloc(1, sizeof(*b) + nworkers * sizeof(int))) == NULL)
		return NULL;
	atomic_init(&b->refs, 1);
	b->addr = *addr;
	for (i = 0; i < nworkers; i++)
		b->fds[i] = -1;
	b->nfds = nworkers;
	for (i = 0; i < nworkers; i++) {
		b->fds[i] = mt_net_listen(addr, 1, conf->sockopts,
		    conf->nsockopts, err, sizeof(err));
		if (b->fds[i] == -1) {
			mt_config_report_add(report, conf->file,
			    mt_service_conf_line(conf, "accept"), 1, "[%s] %s",
			    conf->name, err);
			bound_unref(b);
			return NULL;
		}
	}
	return b;
}

static int
gen_add_bound(struct mt_generation *gen, struct mt_bound *b,
    struct mt_service *svc)
{
	struct mt_bound **v;
	struct mt_service **s;

	if ((v = realloc(gen->bound, (gen->nbound + 1) * sizeof(*v))) == NULL)
		return -1;
	gen->bound = v;
	if ((s = realloc(gen->bound_svc, (gen->nbound + 1) * sizeof(*s))) ==
	    NULL)
		return -1;
	gen->bound_svc = s;
	v[gen->nbound] = b;
	s[gen->nbound++] = svc;
	return 0;
}

static int
gen_listen(struct mt_generation *gen, struct mt_service *svc,
    const struct mt_generation *prev, struct mt_config_report *report)
{
	struct mt_service_conf *conf = svc->conf;
	struct mt_sockaddr *addrs;
	struct mt_bound *b;
	char err[512];
	size_t n, i;

	if (mt_net_resolve_listen(&conf->accept, &addrs, &n, err,
	    sizeof(err)) == -1) {
		mt_config_report_add(report, conf->file,
		    mt_service_conf_line(conf, "accept"), 1, "[%s] accept: %s",
		    conf->name, err);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if ((b = bind_addr(conf, &addrs[i], prev, gen->nworkers,
		    report)) == NULL)
			break;
		if (gen_add_bound(gen, b, svc) == -1) {
			bound_unref(b);
			break;
		}
	}
	free(addrs);
	return i == n ? 0 : -1;
}

static int
gen_specs(struct mt_generation *gen)
{
	size_t w, i;

	if ((gen->specs = calloc(gen->nworkers, sizeof(*gen->specs))) == NULL)
		return -1;
	for (w = 0; w < gen->nworkers; w++) {
		gen->specs[w] = calloc(gen->nbound ? gen->nbound : 1,
		    sizeof(**gen->specs));
		if (gen->specs[w] == NULL)
			return -1;
		for (i = 0; i < gen->nbound; i++) {
			gen->specs[w][i].svc = gen->bound_svc[i];
			gen->specs[w][i].fd = gen->bound[i]->fds[w];
		}
	}
	return 0;
}

struct mt_generation *
mt_generation_build(struct mt_config *cfg, const struct mt_generation *prev,
    size_t nworkers, struct mt_config_report *report, int *bind_failed)
{
	struct mt_generation *gen;
	size_t i;

	*bind_failed = 0;
	if ((gen = calloc(1, sizeof(*gen))) == NULL)
		return NULL;
	atomic_init(&gen->refs, 1);
	gen->nworkers = nworkers;
	if (cfg->nservices > 0 && (gen->services = calloc(cfg->nservices,
	    sizeof(*gen->services))) == NULL)
		goto fail;
	for (i = 0; i < cfg->nservices; i++) {
		gen->services[gen->nservices] = mt_service_new(
		    mt_config_take_service(cfg, i), report);
		if (gen->services[gen->nservices] != NULL)
			gen->nservices++;
	}
	if (report->errors > 0)
		goto fail;
	for (i = 0; i < gen->nservices; i++)
		if (gen->services[i]->conf->kind == MT_SERVICE_TUNNEL &&
		    gen_listen(gen, gen->services[i], prev, report) == -1) {
			*bind_failed = 1;
			goto fail;
		}
	if (gen_specs(gen) == -1)
		goto fail;

	/* Success! */
	return gen;

fail:
	if (report->errors == 0)
		mt_config_report_add(report, NULL, 0, 1, "out of memory");
	mt_generation_unref(gen);
	return NULL;
}

void
mt_generation_unref(struct mt_generation *gen)
{
	size_t i;

	if (gen == NULL || atomic_fetch_sub(&gen->refs, 1) != 1)
		return;
	for (i = 0; gen->specs != NULL && i < gen->nworkers; i++)
		free(gen->specs[i]);
	free(gen->specs);
	for (i = 0; i < gen->nbound; i++)
		bound_unref(gen->bound[i]);
	free(gen->bound);
	free(gen->bound_svc);
	for (i = 0; i < gen->nservices; i++)
		mt_service_unref(gen->services[i]);
	free(gen->services);
	free(gen);
}

static void
release_for_worker(void *owner)
{
	mt_generation_unref(owner);
}

void
mt_generation_install(struct mt_generation *gen, struct mt_worker *w,
    size_t i)
{
	struct mt_listen_set set;

	atomic_fetch_add(&gen->refs, 1);
	set.specs = gen->specs[i];
	set.n = gen->nbound;
	set.release = release_for_worker;
	set.owner = gen;
	mt_worker_set_listeners(w, &set);
}

struct mt_service *
mt_generation_find(const struct mt_generation *gen, const char *name)
{
	size_t i;

	for (i = 0; gen != NULL && i < gen->nservices; i++)
		if (strcasecmp(gen->services[i]->conf->name, name) == 0)
			return gen->services[i];
	return NULL;
}
