/*
 * config_fetch_types: option types of fetch services (fetch = URL,
 * deliver, maxSize, keep, firstRun, auth). They check what can be checked
 * without touching the network or the disk; mailtunnel -t opens the
 * delivery target too.
 */
#include "config.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"
#include "mailtunnel/fetch_url.h"
#include "mailtunnel/util.h"

#define SVC(obj) ((struct mt_service_conf *)(obj))
#define CSVC(obj) ((const struct mt_service_conf *)(obj))

/* ---- fetch = URL ---- */

static int
fetch_url_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	struct mt_fetch_url u;
	char err[256];

	if (mt_fetch_url_parse(value, &u, err, sizeof(err)) == -1) {
		mt_opt_error(where, opt, "%s", err);
		return -1;
	}
	return mt_opt_set_string(opt, obj, value, where);
}

const struct mt_opt_type mt_type_fetch_url = {
	"URL", fetch_url_parse,
	mt_opt_string_reset, mt_opt_string_copy, mt_opt_string_print
};

/* ---- deliver = TARGET ---- */

static const char *const targets[] = {
	"maildir:", "dir:", "mbox:", "mda:", "smtp://", "smtps://",
	"smtp+starttls://", "lmtp:", "lmtp+starttls://"
};

static int
deliver_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	size_t i;

	for (i = 0; i < MT_ARRAY_LEN(targets); i++)
		if (mt_str_has_prefix_ci(value, targets[i]) &&
		    value[strlen(targets[i])] != '\0')
			return mt_opt_set_string(opt, obj, value, where);
	mt_opt_error(where, opt, "'%s' is not a delivery target; write "
	    "maildir:DIR, dir:DIR, mbox:FILE, mda:COMMAND, smtp://HOST[:PORT] "
	    "(or smtps://, smtp+starttls://), lmtp:/SOCKET or lmtp://HOST",
	    value);
	return -1;
}

const struct mt_opt_type mt_type_deliver = {
	"TARGET", deliver_parse,
	mt_opt_string_reset, mt_opt_string_copy, mt_opt_string_print
};

/* ---- maxSize = SIZE ---- */

static int
size_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	if (mt_parse_size(value, FIELD(obj, opt, unsigned long long)) == -1) {
		mt_opt_error(where, opt, "expected a size such as 10M, 512k or "
		    "a number of bytes (0: any size), not '%s'", value);
		return -1;
	}
	return 0;
}

static void
size_print(const struct mt_option *opt, const void *obj, FILE *out)
{
	unsigned long long v = *CFIELD(obj, opt, unsigned long long);

	if (v != 0 && v % (1ULL << 20) == 0)
		fprintf(out, "%s = %lluM\n", opt->name, v >> 20);
	else if (v != 0 && v % 1024 == 0)
		fprintf(out, "%s = %lluk\n", opt->name, v >> 10);
	else
		fprintf(out, "%s = %llu\n", opt->name, v);
}

const struct mt_opt_type mt_type_size = {
	"size", size_parse, mt_opt_ull_reset, mt_opt_ull_copy, size_print
};

/* ---- keep = forever | DURATION ---- */

static int
keep_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	unsigned long long *keep = FIELD(obj, opt, unsigned long long);

	if (strcasecmp(value, "forever") == 0) {
		*keep = MT_KEEP_FOREVER;
		return 0;
	}
	if (mt_parse_duration(value, keep) == -1 || *keep == MT_KEEP_FOREVER) {
		mt_opt_error(where, opt, "expected forever or how long after "
		    "delivery a message is deleted on the server (30d, 12h, "
		    "0), not '%s'", value);
		return -1;
	}
	return 0;
}

static void
keep_reset(const struct mt_option *opt, void *obj)
{
	*FIELD(obj, opt, unsigned long long) = MT_KEEP_FOREVER;
}

static void
keep_print(const struct mt_option *opt, const void *obj, FILE *out)
{
	unsigned long long v = *CFIELD(obj, opt, unsigned long long);
	char buf[32];

	if (v == MT_KEEP_FOREVER) {
		fprintf(out, "%s = forever\n", opt->name);
		return;
	}
	mt_format_duration(v, buf, sizeof(buf));
	fprintf(out, "%s = %s\n", opt->name, buf);
}

const struct mt_opt_type mt_type_keep = {
	"forever|duration", keep_parse, keep_reset, mt_opt_ull_copy, keep_print
};

/* ---- firstRun = all | new ---- */

static int
first_run_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	if (strcasecmp(value, "all") == 0)
		*FIELD(obj, opt, int) = 0;
	else if (strcasecmp(value, "new") == 0)
		*FIELD(obj, opt, int) = 1;
	else {
		mt_opt_error(where, opt, "expected all (fetch what is there) or "
		    "new (only what arrives from now on), not '%s'", value);
		return -1;
	}
	return 0;
}

static void
first_run_print(const struct mt_option *opt, const void *obj, FILE *out)
{
	fprintf(out, "%s = %s\n", opt->name, *CFIELD(obj, opt, int) ? "new" :
	    "all");
}

const struct mt_opt_type mt_type_first_run = {
	"all|new", first_run_parse,
	mt_opt_int_reset, mt_opt_int_copy, first_run_print
};

/* ---- auth = PLAIN | LOGIN | XOAUTH2 | OAUTHBEARER ---- */

static int
auth_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	static const char *const mechs[] = {
		"PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"
	};
	size_t i;

	for (i = 0; i < MT_ARRAY_LEN(mechs); i++)
		if (strcasecmp(value, mechs[i]) == 0)
			return mt_opt_set_string(opt, obj, mechs[i], where);
	mt_opt_error(where, opt, "expected PLAIN, LOGIN, XOAUTH2 or "
	    "OAUTHBEARER, not '%s'", value);
	return -1;
}

const struct mt_opt_type mt_type_auth = {
	"mechanism", auth_parse,
	mt_opt_string_reset, mt_opt_string_copy, mt_opt_string_print
};
