/*
 * fetch_config_cli: "mailtunnel fetch -c CONFIG [SERVICE...]": run the
 * fetch services of a configuration file once, all at the same time, on
 * one event loop, and exit with the worst result.
 */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "fetch_cli.h"
#include "mailtunnel/config.h"
#include "mailtunnel/fetch.h"
#include "mailtunnel/fetch_service.h"
#include "mailtunnel/log.h"
#include "mailtunnel/service.h"

struct run {
	struct run *next;
	struct batch *b;
	struct mt_service *svc;
	struct mt_fetch *job;
	enum mt_fetch_status status;
	int finished;
};

struct batch {
	struct event_base *base;
	struct evdns_base *dns;
	struct run *head;
	size_t running;
	int interrupted;
};

/* The worse of two results, for the exit code of the whole run. */
static int
severity(enum mt_fetch_status s)
{
	switch (s) {
	case MT_FETCH_CONFIG: return 5;
	case MT_FETCH_AUTH: return 4;
	case MT_FETCH_DELIVERY: return 3;
	case MT_FETCH_PROTOCOL: return 2;
	case MT_FETCH_TEMPFAIL: return 1;
	case MT_FETCH_OK: return 0;
	}
	return 5;
}

static void
done(void *arg, const struct mt_fetch_result *r)
{
	struct run *run = arg;

	run->job = NULL;
	run->status = r->status;
	run->finished = 1;
	/* The signal watchers would keep the loop going: end it here. */
	if (--run->b->running == 0)
		event_base_loopexit(run->b->base, NULL);
}

static void
interrupted(evutil_socket_t fd, short what, void *arg)
{
	struct batch *b = arg;
	struct run *run;

	b->interrupted = 1;
	for (run = b->head; run != NULL; run = run->next)
		if (run->job != NULL) {
			mt_fetch_cancel(run->job);
			run->job = NULL;
		}
	event_base_loopexit(b->base, NULL);
}

static int
wanted(const struct mt_service_conf *conf, char **names, int nnames)
{
	int i;

	if (nnames == 0)
		return 1;
	for (i = 0; i < nnames; i++)
		if (strcasecmp(names[i], conf->name) == 0)
			return 1;
	return 0;
}

/* Start a job per selected fetch service; -1 on a configuration error. */
static int
start_jobs(struct batch *b, struct mt_config *cfg, char **names, int nnames,
    struct mt_config_report *report)
{
	struct mt_fetch_service_conf fc;
	struct mt_service *svc;
	struct run *run;
	char err[512];
	size_t i;

	for (i = 0; i < cfg->nservices; i++) {
		if (cfg->services[i]->kind != MT_SERVICE_FETCH ||
		    !wanted(cfg->services[i], names, nnames))
			continue;
		if ((svc = mt_service_new(mt_config_take_service(cfg, i),
		    report)) == NULL)
			return -1;
		if ((run = calloc(1, sizeof(*run))) == NULL) {
			mt_service_unref(svc);
			return -1;
		}
		run->svc = svc;
		run->next = b->head;
		b->head = run;
		if (mt_fetch_service_fill(&fc, svc, MT_FETCH_WAIT_FOREVER,
		    b->dns, err, sizeof(err)) == -1) {
			fprintf(stderr, "mailtunnel fetch: [%s] %s\n",
			    svc->conf->name, err);
			return -1;
		}
		run->b = b;
		if ((run->job = mt_fetch_start(b->base, &fc.c, done,
		    run)) == NULL)
			return -1;
		b->running++;
	}
	return 0;
}

static int
missing_names(const struct mt_config *cfg, char **names, int nnames)
{
	int i, bad = 0;
	size_t k;

	for (i = 0; i < nnames; i++) {
		for (k = 0; k < cfg->nservices; k++)
			if (cfg->services[k]->kind == MT_SERVICE_FETCH &&
			    strcasecmp(cfg->services[k]->name, names[i]) == 0)
				break;
		if (k == cfg->nservices) {
			fprintf(stderr, "mailtunnel fetch: %s has no fetch "
			    "service [%s]\n", cfg->path, names[i]);
			bad = 1;
		}
	}
	return bad;
}

static int
finish(struct batch *b)
{
	struct run *run;
	enum mt_fetch_status worst = MT_FETCH_OK;

	while ((run = b->head) != NULL) {
		b->head = run->next;
		if (run->job != NULL)
			mt_fetch_cancel(run->job);
		if (run->finished && severity(run->status) > severity(worst))
			worst = run->status;
		mt_service_unref(run->svc);
		free(run);
	}
	if (b->dns != NULL)
		evdns_base_free(b->dns, 1);
	event_base_free(b->base);
	return b->interrupted ? EX_TEMPFAIL : mt_fetch_exit_code(worst);
}

static void
usage(FILE *out)
{
	fprintf(out,
"Usage: mailtunnel fetch -c CONFIG [-v] [SERVICE...]\n"
"\n"
"Run the fetch services of CONFIG once (all of them, or those named),\n"
"at the same time, and exit with the worst result (see fetch --help).\n"
"-v: more detail (from every service, whatever its debug level says);\n"
"twice: protocol traces, with every secret shown as <redacted>.\n");
}

int
mt_fetch_config_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct mt_config_report report = { 0 };
	struct batch b = { 0 };
	struct mt_config *cfg;
	struct event *sig[2];
	const char *path = NULL;
	int c, verbose = 0, level, rc;
	size_t i;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'v': verbose++; break;
		case 'h': usage(stdout); return EX_OK;
		default: usage(stderr); return EX_USAGE;
		}
	}
	level = verbose >= 2 ? MT_LOG_DEBUG : verbose == 1 ? MT_LOG_INFO :
	    MT_LOG_NOTICE;
	mt_log_set_level(level);
	cfg = mt_config_load(path, &report);
	mt_config_report_print(&report, stderr);
	if (cfg == NULL || missing_names(cfg, argv + optind, argc - optind)) {
		mt_config_report_free(&report);
		mt_config_free(cfg);
		return EX_CONFIG;
	}
	/* -v asks every service for that much detail at least. */
	for (i = 0; verbose > 0 && i < cfg->nservices; i++)
		if (cfg->services[i]->debug_level < level)
			cfg->services[i]->debug_level = -1;
	signal(SIGPIPE, SIG_IGN);
	if ((b.base = event_base_new()) == NULL ||
	    (b.dns = evdns_base_new(b.base,
	    EVDNS_BASE_INITIALIZE_NAMESERVERS)) == NULL)
		rc = -1;
	else
		rc = start_jobs(&b, cfg, argv + optind, argc - optind, &report);
	mt_config_report_free(&report);
	mt_config_free(cfg);
	if (rc == -1) {
		b.interrupted = 0;
		finish(&b);
		return EX_CONFIG;
	}
	sig[0] = evsignal_new(b.base, SIGINT, interrupted, &b);
	sig[1] = evsignal_new(b.base, SIGTERM, interrupted, &b);
	evsignal_add(sig[0], NULL);
	evsignal_add(sig[1], NULL);
	if (b.running > 0)
		event_base_dispatch(b.base);
	event_free(sig[0]);
	event_free(sig[1]);
	return finish(&b);
}
