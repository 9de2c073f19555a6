/*
 * service: the run-time form of one configured service: its configuration,
 * its TLS context and what the tunnels of every worker share (the connect
 * targets and their resolved addresses, counters).
 *
 * A service is reference counted: the daemon's current generation holds one
 * reference and every connection holds one, so a service removed or changed
 * by a reload lives on until its last connection ends. All fields are
 * read-only after mt_service_new() except the atomics and the address
 * caches, which have their own lock.
 */
#ifndef MAILTUNNEL_SERVICE_H
#define MAILTUNNEL_SERVICE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

#include "mailtunnel/config.h"
#include "mailtunnel/net.h"

struct mt_tls_ctx;
struct mt_ocsp_cache;

#define MT_TARGET_MAX_ADDRS 8

/* One "connect = host:port" line. */
struct mt_target {
	const char *host;		/* as written; "localhost" for a bare port */
	const char *port;
	char name[300];			/* "host:port" for log lines */
	int is_ip;			/* host is an address: nothing to resolve */
	struct mt_sockaddr literal;	/* that address, when is_ip */

	/* Addresses resolved earlier (delay = no); guarded by lock. */
	pthread_mutex_t lock;
	struct mt_sockaddr cache[MT_TARGET_MAX_ADDRS];
	size_t ncache;
};

struct mt_service {
	atomic_uint refs;
	struct mt_service_conf *conf;	/* owned */
	struct mt_tls_ctx *tls;
	struct mt_ocsp_cache *ocsp_cache;	/* OCSP options set */
	struct mt_target *targets;
	size_t ntargets;
	atomic_ulong rr;		/* failover = rr: next first target */
	atomic_ulong active;		/* open connections */
	atomic_ulong total;		/* connections since start */
};

/*
 * Build a service from conf, which it takes over (freed with the service,
 * or here on failure). Problems (TLS files, ciphers...) go to report.
 */
struct mt_service *mt_service_new(struct mt_service_conf *conf,
    struct mt_config_report *report);
struct mt_service *mt_service_ref(struct mt_service *svc);
void mt_service_unref(struct mt_service *svc);

/* Copy cached addresses of a target; returns how many (0: resolve). */
size_t mt_target_cached(struct mt_target *t, struct mt_sockaddr *out,
    size_t max);
void mt_target_cache_store(struct mt_target *t, const struct mt_sockaddr *a,
    size_t n);
void mt_target_cache_forget(struct mt_target *t);

/* A fresh connection id, unique for the life of the process. */
unsigned long long mt_service_next_id(void);

#endif
