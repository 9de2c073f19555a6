/*
 * check: see include/mailtunnel/check.h.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

#include <event2/event.h>

#include "mailtunnel/check.h"
#include "mailtunnel/config.h"
#include "mailtunnel/deliver.h"
#include "mailtunnel/fetch_service.h"
#include "mailtunnel/log.h"
#include "mailtunnel/net.h"
#include "mailtunnel/service.h"

static void
check_tunnel(const struct mt_service_conf *conf,
    struct mt_config_report *report)
{
	struct mt_sockaddr *addrs;
	char err[512];
	size_t n;

	if (mt_net_resolve_listen(&conf->accept, &addrs, &n, err,
	    sizeof(err)) == 0)
		free(addrs);
	else
		mt_config_report_add(report, conf->file,
		    mt_service_conf_line(conf, "accept"), 1, "[%s] accept: %s",
		    conf->name, err);
}

static void
fetch_problem(struct mt_config_report *report,
    const struct mt_service_conf *conf, const char *option, const char *what,
    const char *why)
{
	mt_config_report_add(report, conf->file,
	    mt_service_conf_line(conf, option), 1, "[%s] %s: %s%s", conf->name,
	    option, what, why);
}

static void
check_fetch(const struct mt_service_conf *conf,
    struct mt_config_report *report)
{
	struct event_base *base = event_base_new();
	struct mt_deliver_opts opts;
	struct mt_deliver *target;
	struct stat st;
	char err[512];

	mt_fetch_service_deliver_opts(conf, &opts);
	if (base != NULL) {
		target = mt_deliver_open_ex(conf->deliver, base, NULL, &opts,
		    err, sizeof(err));
		if (target == NULL)
			fetch_problem(report, conf, "deliver", "", err);
		mt_deliver_close(target);
		event_base_free(base);
	}
	if (stat(conf->state_dir, &st) == -1 || !S_ISDIR(st.st_mode))
		fetch_problem(report, conf, "state", conf->state_dir,
		    " is not a folder (create it, writable by the user that "
		    "runs mailtunnel)");
	if (conf->password_file == NULL)
		return;
	if (stat(conf->password_file, &st) == -1)
		fetch_problem(report, conf, "passwordFile", conf->password_file,
		    ": no such file");
	else if (st.st_mode & 077)
		fetch_problem(report, conf, "passwordFile", conf->password_file,
		    " may be read by group or others: chmod 600 it");
}

int
mt_check_config(const char *path, int verbose)
{
	struct mt_config_report report = { 0 };
	struct mt_service_conf *conf;
	struct mt_config *cfg;
	size_t i, n, nservices = 0;

	mt_log_set_level(MT_LOG_WARNING);
	if ((cfg = mt_config_load(path, &report)) != NULL) {
		if (verbose)
			mt_config_dump(cfg, stdout);
		nservices = cfg->nservices;
		for (i = 0; i < cfg->nservices; i++) {
			conf = cfg->services[i];
			if (conf->kind == MT_SERVICE_FETCH)
				check_fetch(conf, &report);
			else
				check_tunnel(conf, &report);
			mt_service_unref(mt_service_new(
			    mt_config_take_service(cfg, i), &report));
		}
	}
	mt_config_report_print(&report, stderr);
	if (report.errors > 0)
		fprintf(stderr, "%s: %zu error%s\n", path, report.errors,
		    report.errors == 1 ? "" : "s");
	else
		fprintf(stderr, "%s: OK (%zu service%s)\n", path, nservices,
		    nservices == 1 ? "" : "s");
	n = report.errors;
	mt_config_report_free(&report);
	mt_config_free(cfg);
	return n > 0 ? EX_CONFIG : EX_OK;
}
