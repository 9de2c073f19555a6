/*
 * fetch_service: see include/mailtunnel/fetch_service.h.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "mailtunnel/fetch_service.h"
#include "mailtunnel/service.h"

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

static int
fill_folders(struct mt_fetch_service_conf *f, const struct mt_service_conf *conf,
    char *err, size_t errsz)
{
	struct mt_fetch_conf *c = &f->c;
	size_t i;

	c->nfolders = 0;
	if (f->url.mailbox[0] != '\0')
		f->folders[c->nfolders++] = f->url.mailbox;
	for (i = 0; i < conf->folders.n; i++) {
		if (c->nfolders == MT_FETCH_MAX_FOLDERS) {
			snprintf(err, errsz, "more than %d folders",
			    MT_FETCH_MAX_FOLDERS);
			return -1;
		}
		f->folders[c->nfolders++] = conf->folders.v[i];
	}
	c->folders = f->folders;
	return 0;
}

int
mt_fetch_service_fill(struct mt_fetch_service_conf *f, struct mt_service *svc,
    unsigned lock_wait_ms, struct evdns_base *dns, char *err, size_t errsz)
{
	const struct mt_service_conf *conf = svc->conf;
	struct mt_fetch_conf *c = &f->c;

	memset(f, 0, sizeof(*f));
	mt_fetch_conf_init(c);
	if (mt_fetch_url_parse(conf->fetch_url, &f->url, err, errsz) == -1)
		return -1;
	mt_fetch_conf_from_url(c, &f->url);
	if (fill_folders(f, conf, err, errsz) == -1)
		return -1;
	c->name = conf->name;
	c->log_level = conf->debug_level;
	if (conf->auth != NULL)
		c->auth = conf->auth;
	c->password_file = conf->password_file;
	c->password_command = conf->password_command;
	c->token_command = conf->token_command;
	c->deliver = conf->deliver;
	mt_fetch_service_deliver_opts(conf, &f->deliver);
	c->deliver_opts = &f->deliver;
	c->state_dir = conf->state_dir;
	/* keep = DURATION deletes after a while; delete = yes at once. */
	c->delete = conf->keep != MT_KEEP_FOREVER || conf->delete_mail;
	c->keep_seconds = conf->keep != MT_KEEP_FOREVER ? conf->keep : 0;
	c->max_size = conf->max_size;
	c->first_run = conf->first_run_new ? MT_FETCH_FIRST_NEW :
	    MT_FETCH_FIRST_ALL;
	c->lock_wait_ms = lock_wait_ms;
	c->tls_ctx = svc->tls;
	if (mt_ocsp_wanted(&conf->ocsp)) {
		c->ocsp = &conf->ocsp;
		c->ocsp_cache = svc->ocsp_cache;
	}
	c->timeout_connect_s = (unsigned)conf->timeout_connect;
	c->timeout_io_s = (unsigned)conf->timeout_busy;
	c->dns = dns;
	return mt_fetch_conf_check(c, err, errsz);
}
