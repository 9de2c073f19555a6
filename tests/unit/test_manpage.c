/*
 * The option table and mailtunnel.conf(5) must agree: every supported
 * option has an entry, every refused stunnel option is listed as refused.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config_int.h"

static char *
read_manpage(void)
{
	const char *dir = getenv("MT_SRCDIR");
	char path[4096];
	static char buf[1 << 17];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/doc/mailtunnel.conf.5",
	    dir ? dir : MT_TEST_SRCDIR);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* An entry: a .TP line followed by .B/.BR/.BI starting with the name. */
static int
has_entry(const char *man, const char *name)
{
	const char *p = man;
	size_t len = strlen(name);

	while ((p = strstr(p, ".TP\n")) != NULL) {
		p += 4;
		if (strncmp(p, ".BR ", 4) == 0 || strncmp(p, ".BI ", 4) == 0)
			p += 4;
		else if (strncmp(p, ".B ", 3) == 0)
			p += 3;
		else
			continue;
		if (*p == '"')
			p++;
		if (strncmp(p, name, len) == 0 && (p[len] == ' ' ||
		    p[len] == '\n' || p[len] == '"'))
			return 1;
	}
	return 0;
}

static void
test_every_option_documented(void **state)
{
	const char *man = read_manpage();
	const char *found = strstr(man, "are refused with an error naming");
	char refused[8192], *p;
	size_t i;

	(void)state;
	assert_non_null(found);
	/* The list wraps: compare words, not lines. */
	snprintf(refused, sizeof(refused), "%s", found);
	for (p = refused; *p != '\0'; p++)
		if (*p == '\n')
			*p = ' ';
	for (i = 0; i < mt_options_count; i++) {
		const struct mt_option *opt = &mt_options[i];

		if (opt->flags & MT_OPT_UNSUPPORTED) {
			char word[64];

			snprintf(word, sizeof(word), " %s,", opt->name);
			if (strstr(refused, word) == NULL) {
				snprintf(word, sizeof(word), " %s.", opt->name);
				if (strstr(refused, word) == NULL)
					fail_msg("refused option '%s' is not "
					    "listed in mailtunnel.conf(5)",
					    opt->name);
			}
		} else if (!has_entry(man, opt->name)) {
			fail_msg("option '%s' has no entry in "
			    "mailtunnel.conf(5)", opt->name);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_option_documented),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
