/*
 * fetch_service: from a fetch service of the configuration file (a
 * [section] with "fetch = URL") to what the delivery target and the fetch
 * job take. The filled structs point into the service (its configuration
 * and TLS context) and into the struct mt_fetch_service_conf itself: keep
 * both alive until mt_fetch_start() has returned (it copies).
 */
#ifndef MAILTUNNEL_FETCH_SERVICE_H
#define MAILTUNNEL_FETCH_SERVICE_H

#include <stddef.h>

#include "mailtunnel/config.h"
#include "mailtunnel/deliver.h"
#include "mailtunnel/fetch.h"

struct evdns_base;
struct mt_service;

/* The delivery options of conf (the spool of mda: is the state folder). */
void mt_fetch_service_deliver_opts(const struct mt_service_conf *conf,
    struct mt_deliver_opts *opts);

/* A job configuration and the storage it points into. */
struct mt_fetch_service_conf {
	struct mt_fetch_conf c;
	struct mt_fetch_url url;
	struct mt_deliver_opts deliver;
	const char *folders[MT_FETCH_MAX_FOLDERS];
};

/*
 * Fill f for one run of svc (a fetch service). lock_wait_ms: what to do
 * when another fetch of the same account runs (0: refuse). dns may be
 * NULL. 0, or -1 with the reason in err.
 */
int mt_fetch_service_fill(struct mt_fetch_service_conf *f,
    struct mt_service *svc, unsigned lock_wait_ms, struct evdns_base *dns,
    char *err, size_t errsz);

#endif
