/*
 * config_validate: checks that need the whole file: what each kind of
 * service requires, options given to the wrong kind of service, names
 * and listening addresses used twice.
 *
 * A section with "fetch = URL" is a fetch service; every other section is
 * a tunnel. An option that only one kind understands, written in a section
 * of the other kind, is an error (never ignored); written in the global
 * section it is a default that the other kind does not use.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"
#include "mailtunnel/fetch_url.h"

static void problem(struct mt_config_report *report,
    const struct mt_service_conf *svc, const char *option, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));

static void
problem(struct mt_config_report *report, const struct mt_service_conf *svc,
    const char *option, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	mt_config_report_add(report, svc->file,
	    option ? mt_service_conf_line(svc, option) : svc->line, 1,
	    "[%s] %s", svc->name, msg);
}

static int
same_accept(const struct mt_hostport *a, const struct mt_hostport *b)
{
	if (a->port == NULL || b->port == NULL || strcmp(a->port, b->port))
		return 0;
	if (a->host == NULL || b->host == NULL)
		return 1;	/* a wildcard overlaps every address */
	return strcasecmp(a->host, b->host) == 0;
}

/* Options written in this section that belong to the other kind. */
static void
wrong_kind(struct mt_config_report *report, const struct mt_service_conf *svc)
{
	unsigned other = svc->kind == MT_SERVICE_FETCH ? MT_OPT_TUNNEL :
	    MT_OPT_FETCH;
	size_t i;

	for (i = 0; i < mt_options_count; i++) {
		if (!(mt_options[i].flags & other) ||
		    !mt_optset_has(&svc->set, i))
			continue;
		if (svc->kind == MT_SERVICE_FETCH)
			problem(report, svc, mt_options[i].name, "%s: not an "
			    "option of a fetch service (this section has "
			    "'fetch =')", mt_options[i].name);
		else
			problem(report, svc, mt_options[i].name, "%s: only "
			    "fetch services take this option (add 'fetch = "
			    "URL' to make [%s] one)", mt_options[i].name,
			    svc->name);
	}
}

static void
validate_tunnel(struct mt_config_report *report, struct mt_service_conf *svc)
{
	if (!svc->client)
		problem(report, svc, NULL, "is a server-mode service in stunnel "
		    "terms (no 'client = yes'); mailtunnel supports client "
		    "mode: add 'client = yes'");
	if (svc->accept.port == NULL)
		problem(report, svc, NULL, "no 'accept' address: where should "
		    "plaintext clients connect? (accept = 127.0.0.1:PORT)");
	if (svc->nconnect == 0)
		problem(report, svc, NULL, "no 'connect' target: which TLS "
		    "server should it reach? (connect = HOST:PORT)");
	mt_config_check_protocol(report, svc);
}

static void
validate_fetch(struct mt_config_report *report, struct mt_service_conf *svc)
{
	struct mt_fetch_url u;
	char err[256];
	int secrets = (svc->password_file != NULL) +
	    (svc->password_command != NULL) + (svc->token_command != NULL);

	if (svc->deliver == NULL)
		problem(report, svc, NULL, "no 'deliver' target: where should "
		    "the mail go? (deliver = maildir:/var/mail/NAME, dir:DIR, "
		    "mbox:FILE, mda:COMMAND, smtp://HOST or lmtp:SOCKET)");
	if (secrets == 0)
		problem(report, svc, NULL, "no secret: give passwordFile, "
		    "passwordCommand or, for OAuth, tokenCommand");
	else if (secrets > 1)
		problem(report, svc, NULL, "give only one of passwordFile, "
		    "passwordCommand and tokenCommand");
	if (mt_service_conf_is_set(svc, "delete") && !svc->delete_mail &&
	    svc->keep != MT_KEEP_FOREVER)
		problem(report, svc, "keep", "keep deletes messages after a "
		    "while, but delete = no says never: remove one of them");
	if (svc->folders.n > 0 &&
	    mt_fetch_url_parse(svc->fetch_url, &u, err, sizeof(err)) == 0 &&
	    u.proto == MT_FETCH_POP3)
		problem(report, svc, "folder", "folder: POP3 has a single "
		    "mailbox; folders are for imaps:// and imap:// accounts");
}

void
mt_config_validate(struct mt_config *cfg, struct mt_config_report *report)
{
	struct mt_service_conf *svc, *o;
	size_t k, i;

	for (k = 0; k < cfg->nservices; k++) {
		svc = cfg->services[k];
		svc->kind = svc->fetch_url != NULL ? MT_SERVICE_FETCH :
		    MT_SERVICE_TUNNEL;
		wrong_kind(report, svc);
		if (svc->kind == MT_SERVICE_FETCH)
			validate_fetch(report, svc);
		else
			validate_tunnel(report, svc);
		if (mt_ocsp_wanted(&svc->ocsp) && !svc->tls.verify_chain)
			problem(report, svc, svc->ocsp.aia ? "OCSPaia" : "OCSP",
			    "%s: OCSP checks a verified chain, and verifyChain = "
			    "no turns verification off: remove one of them",
			    svc->ocsp.aia ? "OCSPaia" : "OCSP");
		if (svc->tls.version_max != 0 &&
		    svc->tls.version_max < svc->tls.version_min)
			problem(report, svc, "sslVersionMax", "sslVersionMax is "
			    "below sslVersionMin");
		for (i = 0; i < k; i++) {
			o = cfg->services[i];
			if (strcasecmp(o->name, svc->name) == 0)
				problem(report, svc, NULL, "defined twice "
				    "(first at %s:%u)", o->file, o->line);
			else if (svc->kind == MT_SERVICE_TUNNEL &&
			    o->kind == MT_SERVICE_TUNNEL &&
			    same_accept(&o->accept, &svc->accept))
				problem(report, svc, "accept", "accept = %s%s%s "
				    "is already used by [%s]",
				    svc->accept.host ? svc->accept.host : "",
				    svc->accept.host ? ":" : "",
				    svc->accept.port, o->name);
		}
	}
	if (cfg->nservices == 0)
		mt_config_report_add(report, cfg->path, 0, 0, "no services "
		    "defined: mailtunnel will wait for a reload (SIGHUP) with a "
		    "[section]");
}
