/*
 * service: see include/mailtunnel/service.h.
 */
#include "config.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailtunnel/log.h"
#include "mailtunnel/ocsp.h"
#include "mailtunnel/service.h"
#include "mailtunnel/tls.h"

static atomic_ullong next_id = 1;

unsigned long long
mt_service_next_id(void)
{
	return atomic_fetch_add(&next_id, 1);
}

static void
targets_free(struct mt_target *targets, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		pthread_mutex_destroy(&targets[i].lock);
	free(targets);
}

/* Literal addresses (and service-name ports) are converted once, here. */
static int
target_literal(struct mt_target *t, struct mt_config_report *report,
    const struct mt_service_conf *conf)
{
	struct addrinfo hints, *res;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST;
	if ((rc = getaddrinfo(t->host, t->port, &hints, &res)) != 0) {
		mt_config_report_add(report, conf->file,
		    mt_service_conf_line(conf, "connect"), 1,
		    "[%s] connect = %s: %s", conf->name, t->name,
		    gai_strerror(rc));
		return -1;
	}
	memcpy(&t->literal.ss, res->ai_addr, res->ai_addrlen);
	t->literal.len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static struct mt_target *
targets_new(const struct mt_service_conf *conf,
    struct mt_config_report *report)
{
	struct mt_target *targets, *t;
	size_t i;

	if ((targets = calloc(conf->nconnect, sizeof(*targets))) == NULL)
		return NULL;
	for (i = 0; i < conf->nconnect; i++) {
		t = &targets[i];
		/* stunnel: "connect = 110" is a port on this machine. */
		t->host = conf->connect[i].host ? conf->connect[i].host :
		    "localhost";
		t->port = conf->connect[i].port;
		t->is_ip = mt_net_is_ip(t->host);
		snprintf(t->name, sizeof(t->name),
		    strchr(t->host, ':') ? "[%s]:%s" : "%s:%s", t->host,
		    t->port);
		pthread_mutex_init(&t->lock, NULL);
		if (t->is_ip && target_literal(t, report, conf) == -1) {
			targets_free(targets, i + 1);
			return NULL;
		}
	}
	return targets;
}

struct mt_service *
mt_service_new(struct mt_service_conf *conf, struct mt_config_report *report)
{
	struct mt_service *svc;

	if ((svc = calloc(1, sizeof(*svc))) == NULL)
		goto err0;
	svc->conf = conf;
	atomic_init(&svc->refs, 1);
	/* A fetch service connects to its URL's host, not to targets. */
	if (conf->nconnect > 0 &&
	    (svc->targets = targets_new(conf, report)) == NULL)
		goto err1;
	svc->ntargets = conf->nconnect;
	if ((svc->tls = mt_tls_ctx_new(conf, report)) == NULL)
		goto err2;
	if (mt_ocsp_wanted(&conf->ocsp) &&
	    (svc->ocsp_cache = mt_ocsp_cache_new()) == NULL) {
		mt_config_report_add(report, conf->file, conf->line, 1,
		    "[%s] out of memory", conf->name);
		goto err3;
	}

	/* Success! */
	return svc;

err3:
	mt_tls_ctx_free(svc->tls);
err2:
	targets_free(svc->targets, svc->ntargets);
err1:
	free(svc);
err0:
	mt_service_conf_free(conf);
	return NULL;
}

struct mt_service *
mt_service_ref(struct mt_service *svc)
{
	atomic_fetch_add(&svc->refs, 1);
	return svc;
}

void
mt_service_unref(struct mt_service *svc)
{
	if (svc == NULL || atomic_fetch_sub(&svc->refs, 1) != 1)
		return;
	mt_tls_ctx_free(svc->tls);
	mt_ocsp_cache_free(svc->ocsp_cache);
	targets_free(svc->targets, svc->ntargets);
	mt_service_conf_free(svc->conf);
	free(svc);
}

size_t
mt_target_cached(struct mt_target *t, struct mt_sockaddr *out, size_t max)
{
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = t->ncache < max ? t->ncache : max;
	memcpy(out, t->cache, n * sizeof(*out));
	pthread_mutex_unlock(&t->lock);
	return n;
}

void
mt_target_cache_store(struct mt_target *t, const struct mt_sockaddr *a,
    size_t n)
{
	if (n > MT_TARGET_MAX_ADDRS)
		n = MT_TARGET_MAX_ADDRS;
	pthread_mutex_lock(&t->lock);
	memcpy(t->cache, a, n * sizeof(*a));
	t->ncache = n;
	pthread_mutex_unlock(&t->lock);
}

void
mt_target_cache_forget(struct mt_target *t)
{
	pthread_mutex_lock(&t->lock);
	t->ncache = 0;
	pthread_mutex_unlock(&t->lock);
}
