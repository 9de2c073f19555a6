/*
 * worker: one thread, one event loop, one DNS resolver, the tunnels of the
 * clients it accepted. Each worker holds its own listening socket per
 * service address (SO_REUSEPORT), so the kernel spreads clients over the
 * workers and no lock is taken per connection.
 *
 * The control thread talks to a worker only through the mt_worker_*
 * functions below, which hand a command over under a mutex and wake the
 * worker with an eventfd; the worker's event base is never touched from
 * another thread.
 */
#ifndef MAILTUNNEL_WORKER_H
#define MAILTUNNEL_WORKER_H

#include <stddef.h>

struct mt_service;

/* One listening socket of this worker, for one service. */
struct mt_listen_spec {
	struct mt_service *svc;		/* borrowed from the owner */
	int fd;				/* borrowed; stays open while in use */
};

/*
 * A listener set handed to a worker. The owner keeps specs (and what they
 * point to) valid until the worker calls release(owner), from the worker
 * thread, once it no longer uses them.
 */
struct mt_listen_set {
	const struct mt_listen_spec *specs;
	size_t n;
	void (*release)(void *owner);
	void *owner;
};

struct mt_worker;

/* max_conns: this worker's share of the connection limit. */
struct mt_worker *mt_worker_new(unsigned index, size_t max_conns);
int mt_worker_start(struct mt_worker *w);

/* Switch to a new listener set (the old one is released when unused). */
void mt_worker_set_listeners(struct mt_worker *w,
    const struct mt_listen_set *set);

/* Stop accepting, let tunnels finish (TIMEOUTclose), then exit the loop. */
void mt_worker_drain(struct mt_worker *w);
/* End every tunnel now and exit the loop. */
void mt_worker_abort(struct mt_worker *w);

void mt_worker_join(struct mt_worker *w);
void mt_worker_free(struct mt_worker *w);

/* Whether the worker's loop has ended (after drain or abort). */
int mt_worker_finished(struct mt_worker *w);

/* Open tunnels (read without a lock: for status lines only). */
size_t mt_worker_connections(const struct mt_worker *w);

#endif
