/*
 * config_types: the value types of the option table. Each knows how to
 * parse a value into its field, reset it, copy it (global defaults into a
 * service) and print it back in config syntax (mailtunnel -t -v).
 */
#include "config.h"

#include <arpa/inet.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include <openssl/ssl.h>

#include "config_int.h"
#include "mailtunnel/log.h"
#include "mailtunnel/util.h"

static void opt_problem(const struct mt_opt_where *where,
    const struct mt_option *opt, int error, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static void
opt_problem(const struct mt_opt_where *where, const struct mt_option *opt,
    int error, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	mt_config_report_add(where->report, where->file, where->line, error,
	    "%s%s%s%s: %s", where->section ? "[" : "",
	    where->section ? where->section : "", where->section ? "] " : "",
	    opt->name, msg);
}

void
mt_opt_error(const struct mt_opt_where *where, const struct mt_option *opt,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	opt_problem(where, opt, 1, fmt, ap);
	va_end(ap);
}

void
mt_opt_warning(const struct mt_opt_where *where, const struct mt_option *opt,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	opt_problem(where, opt, 0, fmt, ap);
	va_end(ap);
}

/* ---- bool ---- */

static int
bool_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	if (mt_parse_bool(value, FIELD(obj, opt, int)) == -1) {
		mt_opt_error(where, opt, "expected yes or no, not '%s'", value);
		return -1;
	}
	return 0;
}

void
mt_opt_int_reset(const struct mt_option *opt, void *obj)
{
	*FIELD(obj, opt, int) = 0;
}

int
mt_opt_int_copy(const struct mt_option *opt, void *dst, const void *src)
{
	*FIELD(dst, opt, int) = *CFIELD(src, opt, int);
	return 0;
}

static void
bool_print(const struct mt_option *opt, const void *obj, FILE *out)
{
	fprintf(out, "%s = %s\n", opt->name,
	    *CFIELD(obj, opt, int) ? "yes" : "no");
}

const struct mt_opt_type mt_type_bool = {
	"yes|no", bool_parse, mt_opt_int_reset, mt_opt_int_copy, bool_print
};

/* A yes|no option kept as its negation, so that a zeroed struct means yes. */
static int
bool_off_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	int *off = FIELD(obj, opt, int);

	if (bool_parse(opt, obj, value, where) == -1)
		return -1;
	*off = !*off;
	return 0;
}

static void
bool_off_print(const struct mt_option *opt, const void *obj, FILE *out)
{
	fprintf(out, "%s = %s\n", opt->name,
	    *CFIELD(obj, opt, int) ? "no" : "yes");
}

const struct mt_opt_type mt_type_bool_off = {
	"yes|no", bool_off_parse, mt_opt_int_reset, mt_opt_int_copy,
	bool_off_print
};

/* ---- unsigned numbers and durations ---- */

static int
uint_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	if (mt_parse_uint(value, opt->min, opt->max,
	    FIELD(obj, opt, unsigned long long)) == -1) {
		mt_opt_error(where, opt, "expected a whole number from %llu to "
		    "%llu, not '%s'", opt->min, opt->max, value);
		return -1;
	}
	return 0;
}

void
mt_opt_ull_reset(const struct mt_option *opt, void *obj)
{
	*FIELD(obj, opt, unsigned long long) = 0;
}

int
mt_opt_ull_copy(const struct mt_option *opt, void *dst, const void *src)
{
	*FIELD(dst, opt, unsigned long long) =
	    *CFIELD(src, opt, unsigned long long);
	return 0;
}

static void
uint_print(const struct mt_option *opt, const void *obj, FILE *out)
{
	fprintf(out, "%s = %llu\n", opt->name,
	    *CFIELD(obj, opt, unsigned long long));
}

const struct mt_opt_type mt_type_uint = {
	"number", uint_parse, mt_opt_ull_reset, mt_opt_ull_copy, uint_print
};

static int
duration_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	unsigned long long v;
	char lo[32], hi[32];

	if (mt_parse_duration(value, &v) == -1 || v < opt->min ||
	    v > opt->max) {
		mt_format_duration(opt->min, lo, sizeof(lo));
		mt_format_duration(opt->max, hi, sizeof(hi));
		mt_opt_error(where, opt, "expected seconds or a duration such "
		    "as 30s, 5m, 2h, 1d, from %s to %s, not '%s'", lo, hi,
		    value);
		return -1;
	}
	*FIELD(obj, opt, unsigned long long) = v;
	return 0;
}

static void
duration_print(const struct mt_option *opt, const void *obj, FILE *out)
{
	char buf[32];

	mt_format_duration(*CFIELD(obj, opt, unsigned long long), buf,
	    sizeof(buf));
	fprintf(out, "%s = %s\n", opt->name, buf);
}

const struct mt_opt_type mt_type_duration = {
	"duration", duration_parse,
	mt_opt_ull_reset, mt_opt_ull_copy, duration_print
};

/* ---- strings ---- */

int
mt_opt_set_string(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	char *copy = strdup(value);

	if (copy == NULL) {
		mt_opt_error(where, opt, "out of memory");
		return -1;
	}
	free(*FIELD(obj, opt, char *));
	*FIELD(obj, opt, char *) = copy;
	return 0;
}

void
mt_opt_string_reset(const struct mt_option *opt, void *obj)
{
	free(*FIELD(obj, opt, char *));
	*FIELD(obj, opt, char *) = NULL;
}

int
mt_opt_string_copy(const struct mt_option *opt, void *dst, const void *src)
{
	const char *s = *CFIELD(src, opt, char *);

	*FIELD(dst, opt, char *) = NULL;
	if (s != NULL && (*FIELD(dst, opt, char *) = strdup(s)) == NULL)
		return -1;
	return 0;
}

void
mt_opt_string_print(const struct mt_option *opt, const void *obj, FILE *out)
{
	const char *s = *CFIELD(obj, opt, char *);

	if (s != NULL)
		fprintf(out, "%s = %s\n", opt->name, s);
}

const struct mt_opt_type mt_type_string = {
	"text", mt_opt_set_string,
	mt_opt_string_reset, mt_opt_string_copy, mt_opt_string_print
};

/* Relative paths are taken from the directory of the file that says them. */
static int
path_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	char buf[4096];

	if (value[0] == '/' || where->base_dir == NULL ||
	    strcmp(where->base_dir, ".") == 0)
		return mt_opt_set_string(opt, obj, value, where);
	if ((size_t)snprintf(buf, sizeof(buf), "%s/%s", where->base_dir,
	    value) >= sizeof(buf)) {
		mt_opt_error(where, opt, "path too long");
		return -1;
	}
	return mt_opt_set_string(opt, obj, buf, where);
}

const struct mt_opt_type mt_type_path = {
	"path", path_parse,
	mt_opt_string_reset, mt_opt_string_copy, mt_opt_string_print
};

static int
user_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	unsigned long long id;

	if (mt_parse_uint(value, 0, 0xFFFFFFFEULL, &id) == -1 &&
	    getpwnam(value) == NULL) {
		mt_opt_error(where, opt, "no such user '%s'", value);
		return -1;
	}
	return mt_opt_set_string(opt, obj, value, where);
}

const struct mt_opt_type mt_type_user = {
	"user", user_parse,
	mt_opt_string_reset, mt_opt_string_copy, mt_opt_string_print
};

static int
group_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	unsigned long long id;

	if (mt_parse_uint(value, 0, 0xFFFFFFFEULL, &id) == -1 &&
	    getgrnam(value) == NULL) {
		mt_opt_error(where, opt, "no such group '%s'", value);
		return -1;
	}
	return mt_opt_set_string(opt, obj, value, where);
}

const struct mt_opt_type mt_type_group = {
	"group", group_parse,
	mt_opt_string_reset, mt_opt_string_copy, mt_opt_string_print
};

/* ---- string lists (checkHost, checkIP) ---- */

static int
strlist_add(struct mt_strlist *l, const char *value)
{
	char **v, *copy;

	if ((copy = strdup(value)) == NULL)
		return -1;
	if ((v = realloc(l->v, (l->n + 1) * sizeof(*v))) == NULL) {
		free(copy);
		return -1;
	}
	v[l->n++] = copy;
	l->v = v;
	return 0;
}

static int
strlist_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	if (strlist_add(FIELD(obj, opt, struct mt_strlist), value) == -1) {
		mt_opt_error(where, opt, "out of memory");
		return -1;
	}
	return 0;
}

static void
strlist_reset(const struct mt_option *opt, void *obj)
{
	struct mt_strlist *l = FIELD(obj, opt, struct mt_strlist);
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int
strlist_copy(const struct mt_option *opt, void *dst, const void *src)
{
	const struct mt_strlist *s = CFIELD(src, opt, struct mt_strlist);
	struct mt_strlist *d = FIELD(dst, opt, struct mt_strlist);
	size_t i;

	memset(d, 0, sizeof(*d));
	for (i = 0; i < s->n; i++)
		if (strlist_add(d, s->v[i]) == -1)
			return -1;
	return 0;
}

static void
strlist_print(const struct mt_option *opt, const void *obj, FILE *out)
{
	const struct mt_strlist *l = CFIELD(obj, opt, struct mt_strlist);
	size_t i;

	for (i = 0; i < l->n; i++)
		fprintf(out, "%s = %s\n", opt->name, l->v[i]);
}

const struct mt_opt_type mt_type_strlist = {
	"text", strlist_parse, strlist_reset, strlist_copy, strlist_print
};

static int
ip_list_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	unsigned char addr[16];

	if (inet_pton(AF_INET, value, addr) != 1 &&
	    inet_pton(AF_INET6, value, addr) != 1) {
		mt_opt_error(where, opt, "'%s' is not an IPv4 or IPv6 address",
		    value);
		return -1;
	}
	return strlist_parse(opt, obj, value, where);
}

const struct mt_opt_type mt_type_ip_list = {
	"address", ip_list_parse, strlist_reset, strlist_copy, strlist_print
};

/* ---- unsupported stunnel options ---- */

static int
unsupported_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	int b;

	/* The one value that says what mailtunnel does anyway is fine. */
	if (opt->def != NULL && (strcasecmp(value, opt->def) == 0 ||
	    (strcmp(opt->def, "no") == 0 && mt_parse_bool(value, &b) == 0 &&
	    !b)))
		return 0;
	if (opt->def != NULL)
		mt_opt_error(where, opt, "this stunnel option is not supported "
		    "yet by mailtunnel (%s); only '%s = %s', which is what "
		    "mailtunnel does, is accepted", opt->doc, opt->name,
		    opt->def);
	else
		mt_opt_error(where, opt, "this stunnel option is not supported "
		    "yet by mailtunnel (%s)", opt->doc);
	return -1;
}

void
mt_opt_nothing_reset(const struct mt_option *opt, void *obj)
{
}

int
mt_opt_nothing_copy(const struct mt_option *opt, void *dst, const void *src)
{
	return 0;
}

void
mt_opt_nothing_print(const struct mt_option *opt, const void *obj, FILE *out)
{
}

const struct mt_opt_type mt_type_unsupported = {
	"-", unsupported_parse,
	mt_opt_nothing_reset, mt_opt_nothing_copy, mt_opt_nothing_print
};

/* ---- global specials ---- */

static int
debug_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	struct mt_config *cfg = obj;

	if (mt_log_parse_level(value, &cfg->debug_level,
	    &cfg->log_facility) == -1) {
		mt_opt_error(where, opt, "expected a level 0-7 or emerg, alert, "
		    "crit, err, warning, notice, info, debug, optionally after "
		    "a syslog facility (daemon.info), not '%s'", value);
		return -1;
	}
	return 0;
}

static void
debug_reset(const struct mt_option *opt, void *obj)
{
	struct mt_config *cfg = obj;

	cfg->debug_level = MT_LOG_DEFAULT_LEVEL;
	cfg->log_facility = LOG_DAEMON;
}

static int
debug_copy(const struct mt_option *opt, void *dst, const void *src)
{
	return 0;	/* global only: never copied */
}

static void
debug_print(const struct mt_option *opt, const void *obj, FILE *out)
{
	const struct mt_config *cfg = obj;

	fprintf(out, "%s = %s\n", opt->name,
	    mt_log_level_name(cfg->debug_level));
}

const struct mt_opt_type mt_type_debug = {
	"level", debug_parse, debug_reset, debug_copy, debug_print
};

/* A service's own "debug = LEVEL", as stunnel takes it: no facility. */
static int
service_debug_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	int level, facility;

	if (mt_log_parse_level(value, &level, &facility) == -1) {
		mt_opt_error(where, opt, "expected a level 0-7 or emerg, alert, "
		    "crit, err, warning, notice, info, debug, not '%s'", value);
		return -1;
	}
	if (strchr(value, '.') != NULL) {
		mt_opt_error(where, opt, "a syslog facility can only be set in "
		    "the global section; write 'debug = %s' here",
		    mt_log_level_name(level));
		return -1;
	}
	*FIELD(obj, opt, int) = level;
	return 0;
}

static void
service_debug_reset(const struct mt_option *opt, void *obj)
{
	*FIELD(obj, opt, int) = -1;
}

static void
service_debug_print(const struct mt_option *opt, const void *obj, FILE *out)
{
	int level = *CFIELD(obj, opt, int);

	if (level >= 0)
		fprintf(out, "%s = %s\n", opt->name, mt_log_level_name(level));
}

const struct mt_opt_type mt_type_service_debug = {
	"level", service_debug_parse, service_debug_reset, mt_opt_int_copy,
	service_debug_print
};

static int
foreground_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	int *f = FIELD(obj, opt, int);

	if (strcasecmp(value, "quiet") == 0) {
		*f = 2;
		return 0;
	}
	if (mt_parse_bool(value, f) == -1) {
		mt_opt_error(where, opt, "expected yes, no or quiet, not '%s'",
		    value);
		return -1;
	}
	return 0;
}

static void
foreground_print(const struct mt_option *opt, const void *obj, FILE *out)
{
	static const char *const names[] = { "no", "yes", "quiet" };

	fprintf(out, "%s = %s\n", opt->name, names[*CFIELD(obj, opt, int)]);
}

const struct mt_opt_type mt_type_foreground = {
	"yes|no|quiet", foreground_parse,
	mt_opt_int_reset, mt_opt_int_copy, foreground_print
};

/* ---- client ---- */

static int
client_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	if (bool_parse(opt, obj, value, where) == -1)
		return -1;
	if (*FIELD(obj, opt, int) == 0) {
		mt_opt_error(where, opt, "server mode (client = no) is not "
		    "supported yet: mailtunnel accepts plaintext and connects "
		    "over TLS (client = yes)");
		return -1;
	}
	return 0;
}

const struct mt_opt_type mt_type_client = {
	"yes", client_parse, mt_opt_int_reset, mt_opt_int_copy, bool_print
};

/* ---- retry, failover ---- */

static int
retry_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	unsigned long long *ms = FIELD(obj, opt, unsigned long long);
	int b;

	if (mt_parse_bool(value, &b) == 0) {
		*ms = b ? 1000 : 0;
		return 0;
	}
	if (mt_parse_uint(value, 1, 3600000, ms) == -1) {
		mt_opt_error(where, opt, "expected yes, no or a delay in "
		    "milliseconds (1-3600000), not '%s'", value);
		return -1;
	}
	return 0;
}

static void
retry_print(const struct mt_option *opt, const void *obj, FILE *out)
{
	unsigned long long ms = *CFIELD(obj, opt, unsigned long long);

	if (ms == 0)
		fprintf(out, "%s = no\n", opt->name);
	else
		fprintf(out, "%s = %llu\n", opt->name, ms);
}

const struct mt_opt_type mt_type_retry = {
	"yes|no|milliseconds", retry_parse,
	mt_opt_ull_reset, mt_opt_ull_copy, retry_print
};

static int
failover_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	int *rr = FIELD(obj, opt, int);

	if (strcasecmp(value, "rr") == 0)
		*rr = 1;
	else if (strcasecmp(value, "prio") == 0)
		*rr = 0;
	else {
		mt_opt_error(where, opt, "expected rr or prio, not '%s'", value);
		return -1;
	}
	return 0;
}

static void
failover_print(const struct mt_option *opt, const void *obj, FILE *out)
{
	fprintf(out, "%s = %s\n", opt->name,
	    *CFIELD(obj, opt, int) ? "rr" : "prio");
}

const struct mt_opt_type mt_type_failover = {
	"rr|prio", failover_parse,
	mt_opt_int_reset, mt_opt_int_copy, failover_print
};
