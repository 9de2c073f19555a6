/*
 * daemon_int: private to daemon.c (lifecycle, signals, privileges) and
 * generation.c (services plus their listening sockets, built and swapped
 * as a unit on start and on reload).
 */
#ifndef MT_DAEMON_INT_H
#define MT_DAEMON_INT_H

#include <stdatomic.h>
#include <stddef.h>

#include "mailtunnel/config.h"
#include "mailtunnel/net.h"
#include "mailtunnel/worker.h"

/*
 * One accept address, bound once per worker. Shared between the old and
 * the new generation when a reload keeps the address, so clients queued
 * in the kernel are never dropped; closed with its last reference.
 */
struct mt_bound {
	atomic_uint refs;
	struct mt_sockaddr addr;
	size_t nfds;
	int fds[];
};

struct mt_generation {
	atomic_uint refs;
	struct mt_service **services;
	size_t nservices;
	struct mt_bound **bound;	/* per listening address */
	struct mt_service **bound_svc;	/* its service (borrowed) */
	size_t nbound;
	size_t nworkers;
	struct mt_listen_spec **specs;	/* [worker][nbound] */
};

/*
 * Build a generation from cfg (services are taken out of it): TLS
 * contexts, then listening sockets, reusing those of prev (may be NULL)
 * where the address is the same. All or nothing: NULL with every problem
 * in report. *bind_failed tells a socket problem from a configuration one.
 */
struct mt_generation *mt_generation_build(struct mt_config *cfg,
    const struct mt_generation *prev, size_t nworkers,
    struct mt_config_report *report, int *bind_failed);
void mt_generation_unref(struct mt_generation *gen);
/* Hand worker i its listeners (takes a reference for it). */
void mt_generation_install(struct mt_generation *gen, struct mt_worker *w,
    size_t i);
/* The service of that name, or NULL. */
struct mt_service *mt_generation_find(const struct mt_generation *gen,
    const char *name);

#endif
