/*
 * config_options: the option table. Adding an option is adding a row here
 * (and its field in config.h); parsing, defaults, inheritance from the
 * global section, the -t dump and "did you mean" follow from the row.
 */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"
#include "mailtunnel/util.h"

#define GLOBAL(n, t, f, d, lo, hi, doc) \
	{ n, MT_SCOPE_GLOBAL, 0, &mt_type_##t, \
	  offsetof(struct mt_config, f), d, lo, hi, doc }
#define SERVICE(n, fl, t, f, d, lo, hi, doc) \
	{ n, MT_SCOPE_SERVICE, fl, &mt_type_##t, \
	  offsetof(struct mt_service_conf, f), d, lo, hi, doc }
#define NOT_YET(n, scope, why) NOT_YET_BUT(n, scope, NULL, why)
/* ...except for ok, the value that states what mailtunnel does anyway. */
#define NOT_YET_BUT(n, scope, ok, why) \
	{ n, scope, MT_OPT_UNSUPPORTED, &mt_type_unsupported, 0, ok, 0, 0, why }
#define ANY (MT_SCOPE_GLOBAL | MT_SCOPE_SERVICE)
#define DAY 86400ULL

const struct mt_option mt_options[] = {
	/* Global options. */
	GLOBAL("foreground", foreground, foreground, "no", 0, 0,
	    "stay in the foreground and log to stderr (quiet: do not log "
	    "to stderr)"),
	GLOBAL("pid", path, pid_file, NULL, 0, 0,
	    "pid file written when running as a daemon; empty: none"),
	GLOBAL("setuid", user, setuid_user, NULL, 0, 0,
	    "user to run as after binding the listening ports"),
	GLOBAL("setgid", group, setgid_group, NULL, 0, 0,
	    "group to run as after binding the listening ports"),
	GLOBAL("chroot", path, chroot_dir, NULL, 0, 0,
	    "directory to chroot into after start-up"),
	GLOBAL("output", path, output, NULL, 0, 0,
	    "append the log to this file (reopened on SIGUSR1)"),
	GLOBAL("syslog", bool, syslog, "yes", 0, 0,
	    "log to syslog when running as a daemon without output"),
	GLOBAL("debug", debug, debug_level, "notice", 0, 0,
	    "log level 0-7 or a name, optionally facility.level"),
	GLOBAL("workers", uint, workers, "0", 0, 256,
	    "event loop threads; 0: one per CPU"),
	{ "include", ANY, MT_OPT_INCLUDE, &mt_type_path, 0, NULL, 0, 0,
	    "read every file in this directory, in name order" },

	/* Service options; in the global section, defaults for all. */
	SERVICE("client", MT_OPT_TUNNEL, client, client, NULL, 0, 0,
	    "yes: accept plaintext, connect over TLS (the only mode)"),
	SERVICE("accept", MT_OPT_TUNNEL, accept, accept, NULL, 0, 0,
	    "[host:]port to listen on for plaintext clients"),
	SERVICE("connect", MT_OPT_REPEAT | MT_OPT_TUNNEL, connect, connect, NULL, 0, 0,
	    "[host:]port of the TLS server; repeat for failover"),
	SERVICE("failover", MT_OPT_TUNNEL, failover, failover_rr, "prio", 0, 0,
	    "prio: try connect targets in order; rr: round robin"),
	SERVICE("delay", MT_OPT_TUNNEL, bool, delay, "no", 0, 0,
	    "resolve connect host names at each connection"),
	SERVICE("retry", MT_OPT_TUNNEL, retry, retry_ms, "no", 0, 0,
	    "when every connect target fails, try again after this many "
	    "milliseconds until TIMEOUTconnect"),
	SERVICE("sni", 0, string, tls.sni, NULL, 0, 0,
	    "server name sent in the TLS handshake"),
	SERVICE("verifyChain", 0, bool, tls.verify_chain, "yes", 0, 0,
	    "verify the server certificate chain"),
	SERVICE("verifyPeer", 0, bool, tls.verify_peer, "no", 0, 0,
	    "require the server certificate itself in CAfile/CApath"),
	SERVICE("verify", 0, verify, tls, NULL, 0, 0,
	    "stunnel's older verify level 0-4"),
	SERVICE("CAfile", 0, path, tls.ca_file, NULL, 0, 0,
	    "trusted certificates (PEM); default: the system store"),
	SERVICE("CApath", 0, path, tls.ca_path, NULL, 0, 0,
	    "directory of hashed trusted certificates"),
	SERVICE("checkHost", MT_OPT_REPEAT, strlist, tls.check_host, NULL, 0, 0,
	    "host name the certificate must match; repeat for several"),
	SERVICE("checkIP", MT_OPT_REPEAT, ip_list, tls.check_ip, NULL, 0, 0,
	    "IP address the certificate must match; repeat for several"),
	SERVICE("cert", 0, path, tls.cert, NULL, 0, 0,
	    "client certificate chain (PEM)"),
	SERVICE("key", 0, path, tls.key, NULL, 0, 0,
	    "private key of the client certificate"),
	SERVICE("sslVersion", 0, ssl_version, tls, NULL, 0, 0,
	    "the one TLS version to use"),
	SERVICE("sslVersionMin", 0, ssl_version_min, tls, "TLSv1.2", 0, 0,
	    "lowest TLS version (TLS 1.2 at least)"),
	SERVICE("sslVersionMax", 0, ssl_version_max, tls, "all", 0, 0,
	    "highest TLS version"),
	SERVICE("ciphers", 0, string, tls.ciphers, NULL, 0, 0,
	    "TLS 1.2 cipher list (OpenSSL syntax)"),
	SERVICE("ciphersuites", 0, string, tls.ciphersuites, NULL, 0, 0,
	    "TLS 1.3 cipher suites (OpenSSL syntax)"),
	SERVICE("curves", 0, string, tls.curves, NULL, 0, 0,
	    "key exchange groups, colon separated"),
	SERVICE("options", MT_OPT_REPEAT | MT_OPT_ACCUMULATE, ssl_options, tls,
	    NULL, 0, 0, "OpenSSL option to set, or -OPTION to clear"),
	SERVICE("securityLevel", 0, uint, tls.security_level, "2", 2, 5,
	    "OpenSSL security level (2 refuses RSA-1024 and SHA-1)"),
	SERVICE("sessionCacheSize", 0, uint, tls.session_cache_size, "1000",
	    0, 10000000, "TLS sessions kept for resumption; 0: no limit"),
	SERVICE("sessionCacheTimeout", 0, duration, tls.session_cache_timeout,
	    "300", 0, 30 * DAY, "how long a TLS session is kept"),
	SERVICE("sessionResume", 0, bool_off, tls.no_resume, "yes", 0, 0,
	    "no: a full handshake every time, no session kept"),
	SERVICE("renegotiation", 0, bool_off, tls.no_renegotiation, "yes", 0, 0,
	    "no: refuse a TLS 1.2 server's renegotiation (the connection "
	    "ends)"),
	SERVICE("OCSPaia", 0, bool, ocsp.aia, "no", 0, 0,
	    "check the server's chain with the OCSP responders its "
	    "certificates name"),
	SERVICE("OCSP", 0, ocsp_url, ocsp.url, NULL, 0, 0,
	    "http:// URL of an OCSP responder to ask first"),
	SERVICE("OCSPrequire", 0, bool, ocsp.require, "yes", 0, 0,
	    "refuse the server when no responder gives a clear answer"),
	SERVICE("OCSPflag", MT_OPT_REPEAT, ocsp_flag, ocsp.flags, NULL, 0, 0,
	    "an OpenSSL OCSP verification flag (NOINTERN, NOCHECKS ...); "
	    "repeat for several"),
	SERVICE("OCSPnonce", 0, bool, ocsp.nonce, "no", 0, 0,
	    "send a nonce and require it back (replay protection)"),
	SERVICE("TIMEOUTocsp", 0, duration, ocsp.timeout, "5", 1,
	    300, "time for the OCSP answers of one connection"),
	SERVICE("TIMEOUTconnect", 0, duration, timeout_connect, "10", 1, DAY,
	    "time to connect and finish the TLS handshake"),
	SERVICE("TIMEOUTidle", MT_OPT_TUNNEL, duration, timeout_idle, "43200", 1, 30 * DAY,
	    "close a connection with no traffic for this long"),
	SERVICE("TIMEOUTclose", MT_OPT_TUNNEL, duration, timeout_close, "60", 0, DAY,
	    "time to flush and close after one side has finished"),
	SERVICE("TIMEOUTbusy", 0, duration, timeout_busy, "300", 1, DAY,
	    "close when a peer accepts none of the pending data for this long"),
	SERVICE("protocol", MT_OPT_TUNNEL, protocol, protocol, NULL, 0, 0,
	    "pop3, imap or smtp: start TLS with STARTTLS after the plaintext "
	    "greeting"),
	SERVICE("protocolHost", MT_OPT_TUNNEL, ehlo_name, protocol_host, NULL, 0, 0,
	    "protocol = smtp: the EHLO name; default: this machine's name"),
	SERVICE("debug", 0, service_debug, debug_level, NULL, 0, 0,
	    "in a [section]: this service's own log level; default: the "
	    "global one"),
	SERVICE("socket", MT_OPT_REPEAT | MT_OPT_ACCUMULATE | MT_OPT_TUNNEL,
	    sockopt, sockopts, NULL, 0, 0, "a|l|r:NAME=VALUE socket option"),

	/* Fetch services: a section with "fetch = URL" downloads mail. */
	SERVICE("fetch", MT_OPT_FETCH | MT_OPT_SECTION, fetch_url, fetch_url,
	    NULL, 0, 0, "pop3s://, imaps://, pop3:// or imap:// URL of the "
	    "account; makes the section a fetch service"),
	SERVICE("deliver", MT_OPT_FETCH, deliver, deliver, NULL, 0, 0,
	    "where the messages go: maildir:DIR, dir:DIR, mbox:FILE, "
	    "mda:COMMAND, smtp://HOST, lmtp:SOCKET"),
	SERVICE("passwordFile", MT_OPT_FETCH, path, password_file, NULL, 0, 0,
	    "file holding the password (not readable by group or others)"),
	SERVICE("passwordCommand", MT_OPT_FETCH, string, password_command,
	    NULL, 0, 0, "command whose first output line is the password"),
	SERVICE("tokenCommand", MT_OPT_FETCH, string, token_command, NULL, 0, 0,
	    "command whose first output line is an OAuth access token"),
	SERVICE("auth", MT_OPT_FETCH, auth, auth, NULL, 0, 0,
	    "PLAIN, LOGIN, XOAUTH2 or OAUTHBEARER; default: chosen"),
	SERVICE("folder", MT_OPT_FETCH | MT_OPT_REPEAT, strlist, folders, NULL,
	    0, 0, "IMAP mailbox to fetch; repeat for several (default INBOX)"),
	SERVICE("interval", MT_OPT_FETCH, duration, interval, "5m", 10,
	    30 * DAY, "time between the end of one run and the next"),
	SERVICE("delete", MT_OPT_FETCH, bool, delete_mail, "no", 0, 0,
	    "delete messages on the server once delivered"),
	SERVICE("keep", MT_OPT_FETCH, keep, keep, "forever", 0, 0,
	    "delete messages this long after delivery (30d); forever: never"),
	SERVICE("maxSize", MT_OPT_FETCH, size, max_size, "0", 0, 0,
	    "skip (and log) larger messages; 0: any size"),
	SERVICE("firstRun", MT_OPT_FETCH, first_run, first_run_new, "all", 0, 0,
	    "all: fetch what is there; new: only what arrives from now on"),
	SERVICE("deliverRecipient", MT_OPT_FETCH, string, deliver_recipient,
	    NULL, 0, 0, "envelope recipient for smtp, lmtp and mda targets"),
	SERVICE("deliverRecipientHeader", MT_OPT_FETCH, string,
	    deliver_recipient_header, NULL, 0, 0,
	    "header(s) to take the recipient from: Delivered-To, X-Envelope-To"),
	SERVICE("deliverSender", MT_OPT_FETCH, string, deliver_sender, NULL, 0, 0,
	    "envelope sender; default: from the message"),
	SERVICE("deliverHelo", MT_OPT_FETCH, string, deliver_helo, NULL, 0, 0,
	    "EHLO/LHLO name towards an smtp or lmtp target"),
	SERVICE("deliverTimeout", MT_OPT_FETCH, duration, deliver_timeout, "0", 0,
	    DAY, "how long an mda command may run, or an smtp/lmtp server "
	    "may take to answer; 0: 10m for mda, 5m for smtp/lmtp"),
	SERVICE("deliverCAfile", MT_OPT_FETCH, path, deliver_ca_file, NULL, 0, 0,
	    "trusted certificates for smtps:// and +starttls targets"),
	SERVICE("deliverCheckHost", MT_OPT_FETCH, string, deliver_check_host,
	    NULL, 0, 0, "name the target server's certificate must carry"),
	SERVICE("deliverStarttls", MT_OPT_FETCH, bool, deliver_starttls, "yes",
	    0, 0, "smtp:// and lmtp://HOST: use STARTTLS when offered"),
	SERVICE("state", MT_OPT_FETCH, path, state_dir,
	    MT_LOCALSTATEDIR "/lib/mailtunnel", 0, 0,
	    "folder for the record of what was delivered"),

	/* Real stunnel options that mailtunnel refuses rather than ignores. */
	NOT_YET("exec", ANY, "running a program instead of connecting"),
	NOT_YET("execArgs", ANY, "running a program instead of connecting"),
	NOT_YET_BUT("pty", ANY, "no",
	    "running a program instead of connecting"),
	NOT_YET("protocolAuthentication", ANY, "proxy protocols"),
	NOT_YET("protocolDomain", ANY, "proxy protocols"),
	NOT_YET("protocolUsername", ANY, "proxy protocols"),
	NOT_YET("protocolPassword", ANY, "proxy protocols"),
	NOT_YET("CRLfile", ANY, "certificate revocation lists"),
	NOT_YET("CRLpath", ANY, "certificate revocation lists"),
	NOT_YET("checkEmail", ANY, "e-mail checks of certificates"),
	NOT_YET("requireCert", ANY, "server mode"),
	NOT_YET("redirect", ANY, "server mode"),
	NOT_YET("ticketKeySecret", ANY, "server mode"),
	NOT_YET("ticketMacSecret", ANY, "server mode"),
	NOT_YET("sessiond", ANY, "a shared session cache server"),
	NOT_YET("PSKidentity", ANY, "pre-shared keys"),
	NOT_YET("PSKsecrets", ANY, "pre-shared keys"),
	NOT_YET_BUT("transparent", ANY, "none", "transparent proxying"),
	NOT_YET("local", ANY, "choosing the outgoing address"),
	NOT_YET("reset", ANY, "TCP RST on errors"),
	NOT_YET("ident", ANY, "ident (RFC 1413) checks"),
	NOT_YET_BUT("libwrap", ANY, "no", "TCP wrappers"),
	NOT_YET_BUT("logId", ANY, "sequential", "other connection id styles"),
	NOT_YET("stack", ANY, "thread stack size; mailtunnel has no thread "
	    "per connection"),
	NOT_YET("engine", ANY, "OpenSSL engines"),
	NOT_YET("engineId", ANY, "OpenSSL engines"),
	NOT_YET("engineNum", ANY, "OpenSSL engines"),
	NOT_YET("engineCtrl", ANY, "OpenSSL engines"),
	NOT_YET("engineDefault", ANY, "OpenSSL engines"),
	NOT_YET("CAengine", ANY, "OpenSSL engines"),
	NOT_YET("config", ANY, "OpenSSL configuration commands"),
	NOT_YET_BUT("fips", ANY, "no", "FIPS mode"),
	NOT_YET("compression", ANY, "TLS compression (insecure, CRIME)"),
	NOT_YET("EGD", ANY, "entropy daemons"),
	NOT_YET("RNDbytes", ANY, "seeding the random generator"),
	NOT_YET("RNDfile", ANY, "seeding the random generator"),
	NOT_YET("RNDoverwrite", ANY, "seeding the random generator"),
	NOT_YET_BUT("log", ANY, "append", "overwriting the log file"),
	NOT_YET("service", ANY, "inetd and Windows service names"),
	NOT_YET("taskbar", ANY, "the Windows task bar"),
	NOT_YET("iconActive", ANY, "the Windows task bar"),
	NOT_YET("iconError", ANY, "the Windows task bar"),
	NOT_YET("iconIdle", ANY, "the Windows task bar"),
};

const size_t mt_options_count = MT_ARRAY_LEN(mt_options);

_Static_assert(MT_ARRAY_LEN(mt_options) <= MT_CONFIG_MAX_OPTIONS,
    "struct mt_optset is too small for the option table");

const struct mt_option *
mt_option_find(const char *name, unsigned scope)
{
	const struct mt_option *other = NULL;
	size_t i;

	for (i = 0; i < mt_options_count; i++) {
		if (strcasecmp(mt_options[i].name, name) != 0)
			continue;
		if (mt_options[i].scope & scope)
			return &mt_options[i];
		if (other == NULL)
			other = &mt_options[i];
	}
	return other;
}

size_t
mt_option_index(const struct mt_option *opt)
{
	return (size_t)(opt - mt_options);
}

const char *
mt_option_suggest(const char *name)
{
	const char *best = NULL;
	unsigned d, bestd = (unsigned)-1, limit;
	size_t i;

	/* Short names tolerate one slip, longer ones a few. */
	limit = strlen(name) < 5 ? 1 : (strlen(name) < 10 ? 2 : 3);
	for (i = 0; i < mt_options_count; i++) {
		if (mt_options[i].flags & MT_OPT_UNSUPPORTED)
			continue;
		d = mt_str_distance(name, mt_options[i].name);
		if (d < bestd) {
			bestd = d;
			best = mt_options[i].name;
		}
	}
	return bestd <= limit ? best : NULL;
}

int
mt_option_set_default(const struct mt_option *opt, void *obj)
{
	struct mt_opt_where where = { 0 };
	struct mt_config_report report = { 0 };
	int rc = 0;

	opt->type->reset(opt, obj);
	if (opt->def != NULL) {
		where.report = &report;
		rc = opt->type->parse(opt, obj, opt->def, &where);
		/* A default that does not parse is a bug in the table. */
		mt_config_report_free(&report);
	}
	return rc;
}

static int
in_scope(const struct mt_option *opt, unsigned scope)
{
	return opt->scope == scope &&
	    (opt->flags & (MT_OPT_UNSUPPORTED | MT_OPT_INCLUDE)) == 0;
}

int
mt_options_init(void *obj, unsigned scope)
{
	size_t i;

	for (i = 0; i < mt_options_count; i++)
		if (in_scope(&mt_options[i], scope) &&
		    mt_option_set_default(&mt_options[i], obj) == -1)
			return -1;
	return 0;
}

void
mt_options_free(void *obj, unsigned scope)
{
	size_t i;

	for (i = 0; i < mt_options_count; i++)
		if (in_scope(&mt_options[i], scope))
			mt_options[i].type->reset(&mt_options[i], obj);
}

int
mt_options_copy(void *dst, const void *src, unsigned scope)
{
	size_t i;

	for (i = 0; i < mt_options_count; i++)
		if (in_scope(&mt_options[i], scope) &&
		    mt_options[i].type->copy(&mt_options[i], dst, src) == -1)
			return -1;
	return 0;
}
