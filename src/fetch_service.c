/*
 * fetch_service: see include/mailtunnel/fetch_service.h.
 */
#include "config.h"

#include <string.h>

#include "mailtunnel/fetch_service.h"

void
mt_fetch_service_deliver_opts(const struct mt_service_conf *conf,
    struct mt_deliver_opts *opts)
{
	unsigned ms = conf->deliver_timeout > 0 ?
	    (unsigned)(conf->deliver_timeout * 1000) : 0;

	memset(opts, 0, sizeof(*opts));
	opts->recipient = conf->deliver_recipient;
	opts->recipient_header = conf->deliver_recipient_header;
	opts->sender = conf->deliver_sender;
	opts->helo_name = conf->deliver_helo;
	opts->spool_dir = conf->state_dir;
	opts->mda_timeout_ms = ms;
	opts->smtp_timeout_ms = ms;
	opts->tls_ca_file = conf->deliver_ca_file;
	opts->tls_check_host = conf->deliver_check_host;
	opts->no_starttls = !conf->deliver_starttls;
}
