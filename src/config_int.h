/*
 * config_int: private to the config module (config.c, config_read.c,
 * config_options.c, config_types.c). The option table lives here: one row
 * per option drives parsing, defaults, inheritance from the global section,
 * the -t dump, "did you mean" hints and the man page check.
 */
#ifndef MT_CONFIG_INT_H
#define MT_CONFIG_INT_H

#include <stddef.h>
#include <stdio.h>

#include "mailtunnel/config.h"

/* ---- line reader (config_read.c): pure, one raw line at a time ---- */

#define MT_CONFIG_MAX_LINE 16384

enum mt_cfg_line_kind {
	MT_CFG_BLANK,		/* empty or a whole-line comment */
	MT_CFG_SECTION,		/* [name] */
	MT_CFG_OPTION,		/* name = value */
	MT_CFG_BAD		/* see msg */
};

struct mt_cfg_line {
	enum mt_cfg_line_kind kind;
	char *name;		/* section or option name, inside the line */
	char *value;		/* option value, trimmed, maybe "" */
	const char *msg;	/* MT_CFG_BAD: what is wrong */
};

/*
 * Classify one line in place (line is modified: NULs are written). first is
 * non-zero for a file's first line, where a UTF-8 BOM is skipped.
 */
void mt_config_read_line(char *line, int first, struct mt_cfg_line *out);

/* ---- option table (config_options.c) ---- */

enum mt_opt_scope {
	MT_SCOPE_GLOBAL = 1,		/* only before the first [section] */
	MT_SCOPE_SERVICE = 2,		/* in a section; in the global section
					   it is the default for all services */
};

enum mt_opt_flag {
	MT_OPT_REPEAT = 1,		/* each line adds a value */
	MT_OPT_UNSUPPORTED = 2,		/* a stunnel option we refuse clearly */
	MT_OPT_ACCUMULATE = 4,		/* REPEAT that adds to inherited values
					   instead of replacing them */
	MT_OPT_INCLUDE = 8,		/* include = DIR, read by the loader */
	MT_OPT_TUNNEL = 16,		/* meaningful for tunnels only */
	MT_OPT_FETCH = 32,		/* meaningful for fetch services only */
	MT_OPT_SECTION = 64,		/* not in the global section */
};

struct mt_option;

/* Where a value is being applied, for messages. */
struct mt_opt_where {
	struct mt_config_report *report;
	const char *file;
	unsigned line;
	const char *base_dir;		/* for relative paths */
	const char *section;		/* NULL: the global section */
};

/*
 * A value type. obj is the struct mt_config (global options) or the struct
 * mt_service_conf (service options); the field is at obj + opt->offset.
 * parse returns 0, or -1 after adding an error to where->report.
 */
struct mt_opt_type {
	const char *syntax;		/* for messages and the man page */
	int (*parse)(const struct mt_option *opt, void *obj, const char *value,
	    const struct mt_opt_where *where);
	void (*reset)(const struct mt_option *opt, void *obj);
	int (*copy)(const struct mt_option *opt, void *dst, const void *src);
	void (*print)(const struct mt_option *opt, const void *obj, FILE *out);
};

/* The field of an option in obj (see struct mt_opt_type). */
#define FIELD(obj, opt, type) ((type *)(void *)((char *)(obj) + (opt)->offset))
#define CFIELD(obj, opt, type) \
	((const type *)(const void *)((const char *)(obj) + (opt)->offset))

struct mt_option {
	const char *name;		/* as stunnel spells it */
	unsigned scope;
	unsigned flags;
	const struct mt_opt_type *type;
	size_t offset;
	const char *def;		/* default as config text; NULL: unset */
	unsigned long long min, max;	/* numeric bounds */
	const char *doc;		/* one line; MT_OPT_UNSUPPORTED: why */
};

extern const struct mt_option mt_options[];
extern const size_t mt_options_count;

/*
 * The row for name (case-insensitive) in scope, else its row in the other
 * scope ("debug" has one in each), else NULL.
 */
const struct mt_option *mt_option_find(const char *name, unsigned scope);
/* The row index (for struct mt_optset). */
size_t mt_option_index(const struct mt_option *opt);
/* The closest supported option name within a small distance, or NULL. */
const char *mt_option_suggest(const char *name);

/* Reset obj's field to the option's default (frees what was there). */
int mt_option_set_default(const struct mt_option *opt, void *obj);

/* Built-in defaults for every option of a scope. */
int mt_options_init(void *obj, unsigned scope);
void mt_options_free(void *obj, unsigned scope);
/* Deep copy of all options of a scope from src to dst (dst is empty). */
int mt_options_copy(void *dst, const void *src, unsigned scope);

static inline void
mt_optset_add(struct mt_optset *s, size_t i)
{
	s->bits[i / 64] |= 1ULL << (i % 64);
}

static inline int
mt_optset_has(const struct mt_optset *s, size_t i)
{
	return (s->bits[i / 64] >> (i % 64)) & 1;
}

/* ---- checks after loading (config_validate.c) ---- */

/* Checks that need the whole file; problems go to report. */
void mt_config_validate(struct mt_config *cfg, struct mt_config_report *report);

/* ---- value types (config_types.c) ---- */

extern const struct mt_opt_type mt_type_bool;
extern const struct mt_opt_type mt_type_bool_off;
extern const struct mt_opt_type mt_type_uint;
extern const struct mt_opt_type mt_type_duration;
extern const struct mt_opt_type mt_type_string;
extern const struct mt_opt_type mt_type_path;
extern const struct mt_opt_type mt_type_user;
extern const struct mt_opt_type mt_type_group;
extern const struct mt_opt_type mt_type_strlist;
extern const struct mt_opt_type mt_type_ip_list;
extern const struct mt_opt_type mt_type_accept;
extern const struct mt_opt_type mt_type_connect;
extern const struct mt_opt_type mt_type_debug;
extern const struct mt_opt_type mt_type_ocsp_url;
extern const struct mt_opt_type mt_type_ocsp_flag;
extern const struct mt_opt_type mt_type_service_debug;
extern const struct mt_opt_type mt_type_foreground;
extern const struct mt_opt_type mt_type_client;
extern const struct mt_opt_type mt_type_verify;
extern const struct mt_opt_type mt_type_ssl_version;
extern const struct mt_opt_type mt_type_ssl_version_min;
extern const struct mt_opt_type mt_type_ssl_version_max;
extern const struct mt_opt_type mt_type_ssl_options;
extern const struct mt_opt_type mt_type_sockopt;
extern const struct mt_opt_type mt_type_retry;
extern const struct mt_opt_type mt_type_failover;
extern const struct mt_opt_type mt_type_unsupported;
extern const struct mt_opt_type mt_type_fetch_url;
extern const struct mt_opt_type mt_type_deliver;
extern const struct mt_opt_type mt_type_size;
extern const struct mt_opt_type mt_type_keep;
extern const struct mt_opt_type mt_type_first_run;
extern const struct mt_opt_type mt_type_auth;
extern const struct mt_opt_type mt_type_protocol;	/* config_proto_types.c */
extern const struct mt_opt_type mt_type_ehlo_name;

/* Once a section is complete: protocol and protocolHost agree (report). */
void mt_config_check_protocol(struct mt_config_report *report,
    const struct mt_service_conf *svc);

/* Building blocks for types: fields of type int, unsigned long long,
 * char * (parse sets a copy), and types with no field of their own. */
void mt_opt_int_reset(const struct mt_option *opt, void *obj);
int mt_opt_int_copy(const struct mt_option *opt, void *dst, const void *src);
void mt_opt_ull_reset(const struct mt_option *opt, void *obj);
int mt_opt_ull_copy(const struct mt_option *opt, void *dst, const void *src);
int mt_opt_set_string(const struct mt_option *opt, void *obj,
    const char *value, const struct mt_opt_where *where);
void mt_opt_string_reset(const struct mt_option *opt, void *obj);
int mt_opt_string_copy(const struct mt_option *opt, void *dst,
    const void *src);
void mt_opt_string_print(const struct mt_option *opt, const void *obj,
    FILE *out);
void mt_opt_nothing_reset(const struct mt_option *opt, void *obj);
int mt_opt_nothing_copy(const struct mt_option *opt, void *dst,
    const void *src);
void mt_opt_nothing_print(const struct mt_option *opt, const void *obj,
    FILE *out);

/* Parse "[host:]port", "[v6]:port"; 0 or -1 with *why set. */
int mt_config_parse_hostport(const char *s, struct mt_hostport *hp,
    const char **why);
void mt_hostport_free(struct mt_hostport *hp);

/* A report entry for a value error, with the option named. */
void mt_opt_error(const struct mt_opt_where *where, const struct mt_option *opt,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void mt_opt_warning(const struct mt_opt_where *where,
    const struct mt_option *opt, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
