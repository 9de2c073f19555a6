/*
 * fetcher: the daemon's fetch services, each run every "interval" on a
 * thread and event loop of their own, so that the fsyncs of delivery
 * never stall a tunnel. The control thread hands it the fetch services of
 * each generation through mt_fetcher_set_services() (a mutex and an
 * eventfd, as for the workers); the fetcher's event base is never touched
 * from another thread.
 *
 * Services are matched by name across reloads: a running job finishes
 * with the settings it started with, the next run uses the new ones and
 * keeps the schedule; a removed service's running job is cancelled
 * (safe: what it delivered is recorded, the rest is fetched later).
 */
#ifndef MAILTUNNEL_FETCHER_H
#define MAILTUNNEL_FETCHER_H

#include <stddef.h>

struct mt_service;
struct mt_fetcher;

struct mt_fetcher *mt_fetcher_new(void);
int mt_fetcher_start(struct mt_fetcher *f);

/*
 * The fetch services from now on (others in v are ignored). Takes a
 * reference on each; gives them back when they are replaced.
 */
void mt_fetcher_set_services(struct mt_fetcher *f, struct mt_service **v,
    size_t n);

/* Cancel every job and end the loop. */
void mt_fetcher_stop(struct mt_fetcher *f);
int mt_fetcher_finished(struct mt_fetcher *f);
void mt_fetcher_free(struct mt_fetcher *f);

#endif
