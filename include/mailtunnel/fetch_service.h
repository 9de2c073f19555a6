/*
 * fetch_service: from a fetch service's configuration (a [section] with
 * "fetch = URL") to what the delivery target and the fetch job take.
 * The filled structs point into the service configuration: keep it alive
 * while they are used.
 */
#ifndef MAILTUNNEL_FETCH_SERVICE_H
#define MAILTUNNEL_FETCH_SERVICE_H

#include "mailtunnel/config.h"
#include "mailtunnel/deliver.h"

/* The delivery options of conf (the spool of mda: is the state folder). */
void mt_fetch_service_deliver_opts(const struct mt_service_conf *conf,
    struct mt_deliver_opts *opts);

#endif
