/*
 * config_report: the list of problems found while loading, and the
 * effective-configuration dump of mailtunnel -t -v.
 */
#include "config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"

void
mt_config_report_add(struct mt_config_report *report, const char *file,
    unsigned line, int error, const char *fmt, ...)
{
	struct mt_config_problem *v, *p;
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		msg = NULL;
	va_end(ap);
	/* An error must never vanish: out of memory still counts it. */
	if (error)
		report->errors++;
	if (msg == NULL)
		return;
	if ((v = realloc(report->v, (report->n + 1) * sizeof(*v))) == NULL) {
		free(msg);
		return;
	}
	report->v = v;
	p = &v[report->n++];
	p->file = file ? strdup(file) : NULL;
	p->line = line;
	p->error = error;
	p->msg = msg;
}

void
mt_config_report_print(const struct mt_config_report *report, FILE *out)
{
	const struct mt_config_problem *p;
	size_t i;

	for (i = 0; i < report->n; i++) {
		p = &report->v[i];
		if (p->file != NULL && p->line > 0)
			fprintf(out, "%s:%u: ", p->file, p->line);
		else if (p->file != NULL)
			fprintf(out, "%s: ", p->file);
		fprintf(out, "%s: %s\n", p->error ? "error" : "warning",
		    p->msg);
	}
}

void
mt_config_report_free(struct mt_config_report *report)
{
	size_t i;

	for (i = 0; i < report->n; i++) {
		free(report->v[i].file);
		free(report->v[i].msg);
	}
	free(report->v);
	memset(report, 0, sizeof(*report));
}

/* skip: options of the other kind of service (0 for globals). */
static void
dump_scope(const void *obj, unsigned scope, unsigned skip, FILE *out)
{
	size_t i;

	for (i = 0; i < mt_options_count; i++) {
		const struct mt_option *opt = &mt_options[i];

		if (opt->scope == scope && !(opt->flags & (MT_OPT_UNSUPPORTED |
		    MT_OPT_INCLUDE | skip)))
			opt->type->print(opt, obj, out);
	}
}

void
mt_config_dump(const struct mt_config *cfg, FILE *out)
{
	size_t i;

	fprintf(out, "; effective configuration of %s (defaults included)\n",
	    cfg->path);
	dump_scope(cfg, MT_SCOPE_GLOBAL, 0, out);
	for (i = 0; i < cfg->nservices; i++) {
		const struct mt_service_conf *svc = cfg->services[i];

		fprintf(out, "\n[%s]\n", svc->name);
		dump_scope(svc, MT_SCOPE_SERVICE, svc->kind == MT_SERVICE_FETCH ?
		    MT_OPT_TUNNEL : MT_OPT_FETCH, out);
	}
}

int
mt_config_global_is_set(const struct mt_config *cfg, const char *name)
{
	const struct mt_option *opt = mt_option_find(name, MT_SCOPE_GLOBAL);

	return opt != NULL && mt_optset_has(&cfg->set, mt_option_index(opt));
}

int
mt_service_conf_is_set(const struct mt_service_conf *svc, const char *name)
{
	const struct mt_option *opt = mt_option_find(name, MT_SCOPE_SERVICE);
	size_t i;

	if (opt == NULL)
		return 0;
	i = mt_option_index(opt);
	return mt_optset_has(&svc->set, i) || mt_optset_has(&svc->inherited, i);
}

unsigned
mt_service_conf_line(const struct mt_service_conf *svc, const char *name)
{
	const struct mt_option *opt = mt_option_find(name, MT_SCOPE_SERVICE);
	size_t i;

	if (opt == NULL)
		return svc->line;
	i = mt_option_index(opt);
	return mt_optset_has(&svc->set, i) ? svc->set_line[i] : svc->line;
}
