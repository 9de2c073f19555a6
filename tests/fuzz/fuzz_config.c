/*
 * libFuzzer harness for the configuration loader.
 *
 * Input: a configuration file. It must load or be refused with at least
 * one error, never crash; a loaded one must print (mailtunnel -t -v) as a
 * configuration that loads again and prints the same. Inputs that name
 * "include" are skipped: they would read the fuzzing machine's files.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mailtunnel/config.h"
#include "mailtunnel/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static char *
dump(const struct mt_config *cfg, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	CHECK(f != NULL);
	mt_config_dump(cfg, f);
	fclose(f);
	return buf;
}

static int
mentions_include(const uint8_t *data, size_t size)
{
	size_t i;

	for (i = 0; i + 7 <= size; i++)
		if (strncasecmp((const char *)data + i, "include", 7) == 0)
			return 1;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mt_config_report r1 = { 0 }, r2 = { 0 };
	struct mt_config *cfg, *again;
	char *first, *second;
	size_t n1, n2;

	if (mentions_include(data, size))
		return 0;
	mt_log_set_level(-1);
	cfg = mt_config_load_buffer("fuzz.conf", (const char *)data, size, &r1);
	CHECK((cfg == NULL) == (r1.errors > 0));
	if (cfg != NULL) {
		first = dump(cfg, &n1);
		again = mt_config_load_buffer("dump.conf", first, n1, &r2);
		CHECK(again != NULL);
		second = dump(again, &n2);
		/* The first line names the file; the rest must match. */
		CHECK(strcmp(strchr(first, '\n'), strchr(second, '\n')) == 0);
		free(first);
		free(second);
		mt_config_free(again);
		mt_config_free(cfg);
	}
	mt_config_report_free(&r1);
	mt_config_report_free(&r2);
	return 0;
}
