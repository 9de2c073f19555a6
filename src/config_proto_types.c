/*
 * config_proto_types: the option types of the STARTTLS dialogue, protocol
 * and protocolHost, and the check that ties the two together once a
 * section is complete.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"
#include "mailtunnel/util.h"

/* ---- protocol ---- */

static const char *const proto_names[] = {
	[MT_PROTO_NONE] = NULL,
	[MT_PROTO_POP3] = "pop3",
	[MT_PROTO_IMAP] = "imap",
	[MT_PROTO_SMTP] = "smtp",
};

/* stunnel's other protocols: refused by name rather than "unknown". */
static const char *const stunnel_only[] = {
	"cifs", "capwin", "capwinctrl", "connect", "ldap", "nntp", "pgsql",
	"proxy", "socks",
};

static int
protocol_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	size_t i;

	for (i = 1; i < MT_ARRAY_LEN(proto_names); i++) {
		if (strcasecmp(value, proto_names[i]) == 0) {
			*FIELD(obj, opt, enum mt_protocol) =
			    (enum mt_protocol)i;
			return 0;
		}
	}
	for (i = 0; i < MT_ARRAY_LEN(stunnel_only); i++) {
		if (strcasecmp(value, stunnel_only[i]) == 0) {
			mt_opt_error(where, opt, "'%s' is a stunnel protocol "
			    "that mailtunnel does not support yet (it speaks "
			    "pop3, imap and smtp)", stunnel_only[i]);
			return -1;
		}
	}
	mt_opt_error(where, opt, "expected pop3, imap or smtp, not '%s'",
	    value);
	return -1;
}

static void
protocol_reset(const struct mt_option *opt, void *obj)
{
	*FIELD(obj, opt, enum mt_protocol) = MT_PROTO_NONE;
}

static int
protocol_copy(const struct mt_option *opt, void *dst, const void *src)
{
	*FIELD(dst, opt, enum mt_protocol) = *CFIELD(src, opt,
	    enum mt_protocol);
	return 0;
}

static void
protocol_print(const struct mt_option *opt, const void *obj, FILE *out)
{
	enum mt_protocol p = *CFIELD(obj, opt, enum mt_protocol);

	if (p != MT_PROTO_NONE)
		fprintf(out, "%s = %s\n", opt->name, proto_names[p]);
}

const struct mt_opt_type mt_type_protocol = {
	"pop3|imap|smtp", protocol_parse, protocol_reset, protocol_copy,
	protocol_print
};

/* ---- protocolHost: the EHLO name ---- */

static int
domain_valid(const char *s, size_t len)
{
	size_t i, label = 0;

	if (len == 0 || len > 253 || s[0] == '.' || s[len - 1] == '.')
		return 0;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-'))
			return 0;
		if ((label == 0 && c == '-') || ++label > 63)
			return 0;
	}
	return s[len - 1] != '-';
}

/* "[192.0.2.1]" or "[IPv6:2001:db8::1]" (RFC 5321 section 4.1.3). */
static int
literal_valid(const char *s, size_t len)
{
	char addr[64];
	unsigned char bin[16];

	if (len < 3 || s[0] != '[' || s[len - 1] != ']' ||
	    len - 2 >= sizeof(addr))
		return 0;
	memcpy(addr, s + 1, len - 2);
	addr[len - 2] = '\0';
	if (strncasecmp(addr, "IPv6:", 5) == 0)
		return inet_pton(AF_INET6, addr + 5, bin) == 1;
	return inet_pton(AF_INET, addr, bin) == 1;
}

int
mt_config_ehlo_name_valid(const char *s)
{
	size_t len = strlen(s);

	if (len > MT_CONFIG_EHLO_MAX)
		return 0;
	return s[0] == '[' ? literal_valid(s, len) : domain_valid(s, len);
}

static int
ehlo_parse(const struct mt_option *opt, void *obj, const char *value,
    const struct mt_opt_where *where)
{
	char *copy;

	if (!mt_config_ehlo_name_valid(value)) {
		mt_opt_error(where, opt, "expected a host name such as "
		    "relay.example.org or an address literal such as "
		    "[192.0.2.1], not '%s'", value);
		return -1;
	}
	if ((copy = strdup(value)) == NULL) {
		mt_opt_error(where, opt, "out of memory");
		return -1;
	}
	free(*FIELD(obj, opt, char *));
	*FIELD(obj, opt, char *) = copy;
	return 0;
}

static void
ehlo_reset(const struct mt_option *opt, void *obj)
{
	free(*FIELD(obj, opt, char *));
	*FIELD(obj, opt, char *) = NULL;
}

static int
ehlo_copy(const struct mt_option *opt, void *dst, const void *src)
{
	const char *s = *CFIELD(src, opt, char *);

	*FIELD(dst, opt, char *) = NULL;
	if (s != NULL && (*FIELD(dst, opt, char *) = strdup(s)) == NULL)
		return -1;
	return 0;
}

static void
ehlo_print(const struct mt_option *opt, const void *obj, FILE *out)
{
	const char *s = *CFIELD(obj, opt, char *);

	if (s != NULL)
		fprintf(out, "%s = %s\n", opt->name, s);
}

const struct mt_opt_type mt_type_ehlo_name = {
	"host name", ehlo_parse, ehlo_reset, ehlo_copy, ehlo_print
};

/* ---- the two together ---- */

/* Ports where TLS starts with the first byte; STARTTLS there would hang. */
static int
implicit_tls_port(const char *port)
{
	static const char *const ports[] = {
		"995", "993", "465", "pop3s", "imaps", "smtps", "submissions",
	};
	size_t i;

	for (i = 0; i < MT_ARRAY_LEN(ports); i++)
		if (strcasecmp(port, ports[i]) == 0)
			return 1;
	return 0;
}

static void
check_ports(struct mt_config_report *report, const struct mt_service_conf *svc)
{
	size_t i;

	for (i = 0; i < svc->nconnect; i++) {
		if (!implicit_tls_port(svc->connect[i].port))
			continue;
		mt_config_report_add(report, svc->file,
		    mt_service_conf_line(svc, "protocol"), 0, "[%s] protocol = "
		    "%s, but connect port %s usually speaks TLS from the first "
		    "byte, without STARTTLS; remove 'protocol' for such ports",
		    svc->name, proto_names[svc->protocol],
		    svc->connect[i].port);
		return;
	}
}

void
mt_config_check_protocol(struct mt_config_report *report,
    const struct mt_service_conf *svc)
{
	size_t host = mt_option_index(mt_option_find("protocolHost", MT_SCOPE_SERVICE));

	if (svc->protocol != MT_PROTO_NONE)
		check_ports(report, svc);

	/* Inherited from the global section, it is meant for the smtp
	 * services only; written in this section, it is a mistake. */
	if (svc->protocol == MT_PROTO_SMTP || svc->protocol_host == NULL ||
	    !mt_optset_has(&svc->set, host))
		return;
	mt_config_report_add(report, svc->file, svc->set_line[host], 1,
	    "[%s] protocolHost is only used with protocol = smtp (as the EHLO "
	    "name), and this service has %s%s; set 'protocol = smtp' or "
	    "remove protocolHost", svc->name, svc->protocol == MT_PROTO_NONE ?
	    "no protocol" : "protocol = ", svc->protocol == MT_PROTO_NONE ?
	    "" : proto_names[svc->protocol]);
}
