/*
 * config: load a stunnel-syntax file into a struct mt_config.
 *
 * inih dispatches the lines, but only after config_read has read each raw
 * line the stunnel way (see config_read.c): the inih reader callback below
 * classifies the real line, keeps it in struct load, and hands inih a
 * canonical short line, so inih's 200-byte lines, inline comments and
 * continuation lines never apply. Section lines are handled in the reader
 * itself, because inih does not report a section that has no options, and
 * such sections get a warning here.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <ini.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"
#include "mailtunnel/util.h"

#define MAX_INCLUDE_DEPTH 8

struct load {
	struct mt_config *cfg;
	struct mt_config_report *report;
	struct mt_service_conf defaults;	/* global section's service opts */
	unsigned global_line[MT_CONFIG_MAX_OPTIONS];
	struct mt_service_conf *svc;		/* current section; NULL: global */
	size_t svc_options;
	int nomem;
	int depth;

	/* The file being read. */
	FILE *fp;
	const char *file;
	const char *base_dir;
	unsigned line;
	char buf[MT_CONFIG_MAX_LINE + 2];
	struct mt_cfg_line cur;
};

static void config_problem(struct load *ld, int error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
config_problem(struct load *ld, int error, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	mt_config_report_add(ld->report, ld->file, ld->line, error, "%s", msg);
}

/* Read one raw line; a line longer than the limit is consumed and flagged. */
static int
read_raw_line(struct load *ld, int *too_long)
{
	size_t n;
	int c;

	*too_long = 0;
	if (fgets(ld->buf, sizeof(ld->buf), ld->fp) == NULL)
		return 0;
	n = strlen(ld->buf);
	if (n == sizeof(ld->buf) - 1 && ld->buf[n - 1] != '\n') {
		*too_long = 1;
		while ((c = fgetc(ld->fp)) != EOF && c != '\n')
			;
	}
	return 1;
}

static void finish_section(struct load *ld);
static void start_section(struct load *ld, const char *name);

/* inih's reader: the bridge described at the top of this file. */
static char *
reader(char *str, int num, void *stream)
{
	struct load *ld = stream;
	int too_long;

	if (!read_raw_line(ld, &too_long))
		return NULL;
	ld->line++;
	mt_config_read_line(ld->buf, ld->line == 1, &ld->cur);
	if (too_long) {
		config_problem(ld, 1, "line longer than %d bytes",
		    MT_CONFIG_MAX_LINE);
		ld->cur.kind = MT_CFG_BLANK;
	}
	switch (ld->cur.kind) {
	case MT_CFG_BAD:
		config_problem(ld, 1, "%s", ld->cur.msg);
		break;
	case MT_CFG_SECTION:
		start_section(ld, ld->cur.name);
		break;
	case MT_CFG_OPTION:
		/* The name and value are read from ld->cur, not from inih. */
		mt_strlcpy(str, "o=v\n", (size_t)num);
		return str;
	case MT_CFG_BLANK:
		break;
	}
	mt_strlcpy(str, "\n", (size_t)num);
	return str;
}

static void
start_section(struct load *ld, const char *name)
{
	struct mt_service_conf *svc;

	finish_section(ld);
	if ((svc = calloc(1, sizeof(*svc))) == NULL ||
	    (svc->name = strdup(name)) == NULL ||
	    (svc->file = strdup(ld->file)) == NULL ||
	    mt_options_copy(svc, &ld->defaults, MT_SCOPE_SERVICE) == -1) {
		if (svc != NULL) {
			mt_options_free(svc, MT_SCOPE_SERVICE);
			free(svc->name);
			free(svc->file);
			free(svc);
		}
		ld->nomem = 1;
		return;
	}
	svc->line = ld->line;
	svc->inherited = ld->defaults.set;
	ld->svc = svc;
	ld->svc_options = 0;
}

void
mt_service_conf_free(struct mt_service_conf *svc)
{
	if (svc == NULL)
		return;
	mt_options_free(svc, MT_SCOPE_SERVICE);
	free(svc->name);
	free(svc->file);
	free(svc);
}

static void
finish_section(struct load *ld)
{
	struct mt_service_conf *svc = ld->svc, **v;
	struct mt_config *cfg = ld->cfg;

	if (svc == NULL)
		return;
	ld->svc = NULL;
	if (ld->svc_options == 0) {
		mt_config_report_add(ld->report, svc->file, svc->line, 0,
		    "[%s] has no options (all commented out?); skipped",
		    svc->name);
		mt_service_conf_free(svc);
		return;
	}
	v = realloc(cfg->services, (cfg->nservices + 1) * sizeof(*v));
	if (v == NULL) {
		mt_service_conf_free(svc);
		ld->nomem = 1;
		return;
	}
	v[cfg->nservices++] = svc;
	cfg->services = v;
}

static int load_file(struct load *ld, const char *path);

static int
include_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	/* Hidden files, editor backups and dpkg leftovers are not config. */
	return d->d_name[0] != '.' && n > 0 && d->d_name[n - 1] != '~' &&
	    strstr(d->d_name, ".dpkg-") == NULL &&
	    strstr(d->d_name, ".ucf-") == NULL;
}

static int
cmp_names(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* include = DIR: every file in name order, as if pasted here. */
static void
include_dir(struct load *ld, const char *value)
{
	struct dirent **names;
	char dir[4096], path[4096];
	int i, n;

	if (value[0] == '/')
		mt_strlcpy(dir, value, sizeof(dir));
	else
		snprintf(dir, sizeof(dir), "%s/%s", ld->base_dir, value);
	if (ld->depth >= MAX_INCLUDE_DEPTH) {
		config_problem(ld, 1, "include: '%s' nested more than %d deep "
		    "(does it include itself?)", value, MAX_INCLUDE_DEPTH);
		return;
	}
	if ((n = scandir(dir, &names, include_filter, cmp_names)) == -1) {
		config_problem(ld, 1, "include: cannot read directory '%s': %s",
		    dir, strerror(errno));
		return;
	}
	for (i = 0; i < n; i++) {
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
		    names[i]->d_name) >= sizeof(path) ||
		    names[i]->d_type == DT_DIR)
			continue;
		load_file(ld, path);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static void
unknown_option(struct load *ld, const char *name)
{
	const char *hint = mt_option_suggest(name);

	if (hint != NULL)
		config_problem(ld, 1, "unknown option '%s'; did you mean '%s'?",
		    name, hint);
	else
		config_problem(ld, 1, "unknown option '%s' (see "
		    "mailtunnel.conf(5) for the options)", name);
}

/* The object and the bookkeeping an option applies to, given where it is. */
static void *
option_target(struct load *ld, const struct mt_option *opt,
    struct mt_optset **set, unsigned **lines)
{
	if (ld->svc != NULL) {
		*set = &ld->svc->set;
		*lines = ld->svc->set_line;
		return ld->svc;
	}
	*lines = ld->global_line;
	if (opt->scope == MT_SCOPE_SERVICE) {
		*set = &ld->defaults.set;
		return &ld->defaults;
	}
	*set = &ld->cfg->set;
	return ld->cfg;
}

static void
apply_option(struct load *ld, const struct mt_option *opt, const char *value)
{
	struct mt_opt_where where = { ld->report, ld->file, ld->line,
	    ld->base_dir, ld->svc ? ld->svc->name : NULL };
	struct mt_optset *set;
	unsigned *lines;
	size_t idx = mt_option_index(opt);
	void *obj = option_target(ld, opt, &set, &lines);

	if (mt_optset_has(set, idx) && !(opt->flags & MT_OPT_REPEAT)) {
		mt_opt_error(&where, opt, "set twice (first on line %u)",
		    lines[idx]);
		return;
	}
	if (*value == '\0') {
		/* An empty value unsets: back to the built-in default. */
		mt_option_set_default(opt, obj);
	} else {
		/* The first value of a list in a section replaces the list
		 * inherited from the global section. */
		if (ld->svc != NULL && (opt->flags & MT_OPT_REPEAT) &&
		    !(opt->flags & MT_OPT_ACCUMULATE) &&
		    !mt_optset_has(set, idx))
			opt->type->reset(opt, obj);
		if (opt->type->parse(opt, obj, value, &where) == -1)
			return;
	}
	if (!mt_optset_has(set, idx))
		lines[idx] = ld->line;
	mt_optset_add(set, idx);
}

/* inih's handler; section and name from inih are placeholders. */
static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct load *ld = user;
	const struct mt_option *opt;

	name = ld->cur.name;
	value = ld->cur.value;
	if (ld->svc != NULL)
		ld->svc_options++;
	if ((opt = mt_option_find(name, ld->svc != NULL ? MT_SCOPE_SERVICE :
	    MT_SCOPE_GLOBAL)) == NULL) {
		unknown_option(ld, name);
		return 1;
	}
	if (opt->flags & MT_OPT_INCLUDE) {
		if (*value != '\0')
			include_dir(ld, value);
		return 1;
	}
	if (ld->svc == NULL && (opt->flags & MT_OPT_SECTION)) {
		config_problem(ld, 1, "%s: belongs in a [section] (it makes the "
		    "section a fetch service), not in the global section",
		    opt->name);
		return 1;
	}
	if (ld->svc != NULL && opt->scope == MT_SCOPE_GLOBAL) {
		config_problem(ld, 1, "[%s] %s: a global option; move it above "
		    "the first [section]", ld->svc->name, opt->name);
		return 1;
	}
	apply_option(ld, opt, value);
	return 1;
}

/* Parse one open stream as if its lines stood at the current position. */
static void
load_stream(struct load *ld, FILE *fp, const char *name, const char *base_dir)
{
	FILE *saved_fp = ld->fp;
	const char *saved_file = ld->file, *saved_dir = ld->base_dir;
	unsigned saved_line = ld->line;

	ld->fp = fp;
	ld->file = name;
	ld->base_dir = base_dir;
	ld->line = 0;
	ld->depth++;
	if (ini_parse_stream(reader, ld, handler, ld) == -2)
		ld->nomem = 1;
	ld->depth--;
	ld->fp = saved_fp;
	ld->file = saved_file;
	ld->base_dir = saved_dir;
	ld->line = saved_line;
}

static int
load_file(struct load *ld, const char *path)
{
	char *dircopy;
	FILE *fp;

	if ((fp = fopen(path, "r")) == NULL) {
		mt_config_report_add(ld->report, path, 0, 1, "cannot open: %s",
		    strerror(errno));
		return -1;
	}
	if ((dircopy = strdup(path)) == NULL) {
		fclose(fp);
		ld->nomem = 1;
		return -1;
	}
	load_stream(ld, fp, path, dirname(dircopy));
	free(dircopy);
	fclose(fp);
	return 0;
}

/* ---- entry points ---- */

static struct mt_config *
load_begin(struct load *ld, const char *name, struct mt_config_report *report)
{
	memset(ld, 0, sizeof(*ld));
	ld->report = report;
	if ((ld->cfg = calloc(1, sizeof(*ld->cfg))) == NULL ||
	    (ld->cfg->path = strdup(name)) == NULL ||
	    mt_options_init(ld->cfg, MT_SCOPE_GLOBAL) == -1 ||
	    mt_options_init(&ld->defaults, MT_SCOPE_SERVICE) == -1) {
		mt_config_free(ld->cfg);
		mt_options_free(&ld->defaults, MT_SCOPE_SERVICE);
		return NULL;
	}
	return ld->cfg;
}

static struct mt_config *
load_end(struct load *ld)
{

	finish_section(ld);
	mt_options_free(&ld->defaults, MT_SCOPE_SERVICE);
	if (ld->nomem)
		mt_config_report_add(ld->report, NULL, 0, 1, "out of memory");
	else if (ld->report->errors == 0)
		mt_config_validate(ld->cfg, ld->report);
	if (ld->report->errors > 0) {
		mt_config_free(ld->cfg);
		return NULL;
	}
	return ld->cfg;
}

struct mt_config *
mt_config_load(const char *path, struct mt_config_report *report)
{
	struct load *ld;
	struct mt_config *cfg;

	if ((ld = calloc(1, sizeof(*ld))) == NULL)
		return NULL;
	if (load_begin(ld, path, report) == NULL) {
		free(ld);
		return NULL;
	}
	load_file(ld, path);
	cfg = load_end(ld);
	free(ld);
	return cfg;
}

struct mt_config *
mt_config_load_buffer(const char *name, const char *buf, size_t len,
    struct mt_config_report *report)
{
	struct load *ld;
	struct mt_config *cfg;
	FILE *fp;

	if ((ld = calloc(1, sizeof(*ld))) == NULL)
		return NULL;
	if (load_begin(ld, name, report) == NULL) {
		free(ld);
		return NULL;
	}
	/* fmemopen needs a non-empty buffer. */
	if (len > 0 && (fp = fmemopen((void *)(uintptr_t)buf, len, "r")) != NULL) {
		load_stream(ld, fp, name, ".");
		fclose(fp);
	} else if (len > 0) {
		ld->nomem = 1;
	}
	cfg = load_end(ld);
	free(ld);
	return cfg;
}

struct mt_service_conf *
mt_config_take_service(struct mt_config *cfg, size_t i)
{
	struct mt_service_conf *svc = cfg->services[i];

	cfg->services[i] = NULL;
	return svc;
}

void
mt_config_free(struct mt_config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	for (i = 0; i < cfg->nservices; i++)
		mt_service_conf_free(cfg->services[i]);
	free(cfg->services);
	mt_options_free(cfg, MT_SCOPE_GLOBAL);
	free(cfg->path);
	free(cfg);
}
