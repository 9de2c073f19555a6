/*
 * config_read: classify one raw configuration line, stunnel's way.
 *
 * stunnel and inih disagree on several points; this is where the file is
 * read as stunnel reads it before inih sees anything: whole lines up to
 * 16 KiB, whitespace trimmed around names and values, ';' and '#' start a
 * comment only at the beginning of a line (a ';' inside a value is data),
 * an indented line is an ordinary line (not a continuation), CRLF endings
 * and a UTF-8 BOM are accepted.
 */
#include "config.h"

#include <string.h>

#include "config_int.h"
#include "mailtunnel/util.h"

static void
strip_eol(char *line)
{
	size_t n = strlen(line);

	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
}

static void
read_section(char *s, struct mt_cfg_line *out)
{
	size_t n = strlen(s);
	char *name;

	if (s[n - 1] != ']') {
		out->kind = MT_CFG_BAD;
		out->msg = "section header without closing ']'";
		return;
	}
	s[n - 1] = '\0';
	name = mt_str_trim(s + 1);
	if (*name == '\0') {
		out->kind = MT_CFG_BAD;
		out->msg = "empty section name '[]'";
		return;
	}
	if (strpbrk(name, "[]") != NULL) {
		out->kind = MT_CFG_BAD;
		out->msg = "section name contains '[' or ']'";
		return;
	}
	out->kind = MT_CFG_SECTION;
	out->name = name;
}

void
mt_config_read_line(char *line, int first, struct mt_cfg_line *out)
{
	char *s, *eq;

	memset(out, 0, sizeof(*out));
	if (first && strncmp(line, "\xEF\xBB\xBF", 3) == 0)
		line += 3;
	strip_eol(line);
	s = mt_str_trim(line);
	if (*s == '\0' || *s == ';' || *s == '#') {
		out->kind = MT_CFG_BLANK;
		return;
	}
	if (*s == '[') {
		read_section(s, out);
		return;
	}
	if ((eq = strchr(s, '=')) == NULL) {
		out->kind = MT_CFG_BAD;
		out->msg = "expected 'option = value'";
		return;
	}
	*eq = '\0';
	out->name = mt_str_trim(s);
	out->value = mt_str_trim(eq + 1);
	if (*out->name == '\0') {
		out->kind = MT_CFG_BAD;
		out->msg = "option name missing before '='";
		return;
	}
	out->kind = MT_CFG_OPTION;
}
