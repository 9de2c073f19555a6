/*
 * config: the configuration model and its loader.
 *
 * mt_config_load() reads a stunnel-syntax file (and the files it includes)
 * into a struct mt_config that the caller owns and frees with
 * mt_config_free(). Every string in it is owned by the config. Nothing here
 * touches the network or TLS: addresses are kept as text and resolved by
 * net, TLS options are checked for syntax here and for meaning by tls when
 * services are built (mailtunnel -t does both).
 *
 * Every problem found is appended to a struct mt_config_report, in file
 * order, with file:line; loading goes on after an error so -t can print them
 * all. A config with any error is not returned.
 */
#ifndef MAILTUNNEL_CONFIG_H
#define MAILTUNNEL_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifndef MT_SYSCONFDIR
#define MT_SYSCONFDIR "/etc"
#endif
#define MT_CONFIG_DEFAULT_PATH MT_SYSCONFDIR "/mailtunnel/mailtunnel.conf"

struct mt_strlist {
	char **v;
	size_t n;
};

/*
 * "host:port" as written. host is NULL when only a port was given: for
 * accept that means every local address (as stunnel), for connect it means
 * localhost. port is a number or a service name.
 */
struct mt_hostport {
	char *host;
	char *port;
};

/* socket = a|l|r:OPTION=VALUE, resolved to setsockopt arguments. */
struct mt_sockopt {
	char where;			/* 'a' listener, 'l' client, 'r' server */
	int level;
	int name;
	int ival;			/* int options; l_onoff for SO_LINGER */
	int ival2;			/* l_linger for SO_LINGER */
	char *sval;			/* SO_BINDTODEVICE */
	const char *label;		/* the option's name, for messages */
};

/* TLS settings; one set per service (tunnel or fetch). */
struct mt_tls_conf {
	int verify_chain;		/* default 1 */
	int verify_peer;		/* pin: certificate must be in CAfile/CApath */
	char *ca_file;
	char *ca_path;
	struct mt_strlist check_host;
	struct mt_strlist check_ip;
	char *cert;
	char *key;
	char *sni;			/* NULL: derived from checkHost or connect */
	int version_min;		/* TLS1_2_VERSION or TLS1_3_VERSION */
	int version_max;		/* 0: the highest OpenSSL knows */
	char *ciphers;			/* TLS 1.2 list */
	char *ciphersuites;		/* TLS 1.3 list */
	char *curves;			/* groups */
	uint64_t options_on;		/* SSL_OP_* to set */
	uint64_t options_off;		/* SSL_OP_* to clear ("options = -X") */
	unsigned long long security_level;	/* OpenSSL level, >= 2 */
	unsigned long long session_cache_size;		/* 0: unlimited */
	unsigned long long session_cache_timeout;	/* seconds */
	int no_resume;			/* sessionResume = no */
	int no_renegotiation;		/* renegotiation = no */
};

/* Revocation checks of the server's chain over OCSP (tunnels). */
struct mt_ocsp_conf {
	int aia;			/* OCSPaia: ask the certificates' own
					   responders */
	char *url;			/* OCSP = URL: ask this one first */
	int require;			/* OCSPrequire: refuse when no
					   responder gives a clear answer */
	int nonce;			/* OCSPnonce */
	unsigned long long flags;	/* OCSPflag: OCSP_basic_verify() */
	unsigned long long timeout;	/* TIMEOUTocsp, seconds */
};

/* Whether any responder is to be asked (OCSPaia or OCSP = URL). */
static inline int
mt_ocsp_wanted(const struct mt_ocsp_conf *c)
{
	return c->aia || c->url != NULL;
}

enum mt_service_kind {
	MT_SERVICE_TUNNEL = 0,		/* accept plaintext, connect over TLS */
	MT_SERVICE_FETCH,		/* "fetch = URL": download mail */
};

/* keep = forever (the default): never delete on the server. */
#define MT_KEEP_FOREVER (~0ULL)

/* protocol = ...: the plaintext opening before TLS (STARTTLS). */
enum mt_protocol {
	MT_PROTO_NONE = 0,		/* TLS from the first byte */
	MT_PROTO_POP3,			/* STLS */
	MT_PROTO_IMAP,			/* STARTTLS */
	MT_PROTO_SMTP,			/* EHLO, STARTTLS */
};

/* Longest EHLO name (protocolHost), without the NUL. */
#define MT_CONFIG_EHLO_MAX 255

/* Bit set of option-table rows (see config_options.c); sized with room. */
#define MT_CONFIG_MAX_OPTIONS 128
struct mt_optset {
	uint64_t bits[MT_CONFIG_MAX_OPTIONS / 64];
};

struct mt_service_conf {
	char *name;
	char *file;			/* where the [section] line is */
	unsigned line;
	enum mt_service_kind kind;

	int client;
	struct mt_hostport accept;
	struct mt_hostport *connect;	/* in failover order */
	size_t nconnect;
	int delay;			/* resolve at each connection */
	struct mt_tls_conf tls;
	struct mt_ocsp_conf ocsp;
	unsigned long long timeout_connect;	/* seconds */
	unsigned long long timeout_idle;
	unsigned long long timeout_close;
	unsigned long long timeout_busy;
	struct mt_sockopt *sockopts;
	size_t nsockopts;
	unsigned long long retry_ms;	/* 0: no retry */
	int failover_rr;		/* failover = rr (else prio) */
	enum mt_protocol protocol;	/* STARTTLS dialogue, or none */
	char *protocol_host;		/* EHLO name; NULL: the default */
	int debug_level;		/* this service's "debug"; -1: the
					   global one */

	/* Fetch services. */
	char *fetch_url;		/* pop3s://user@host, imaps://... */
	char *deliver;			/* maildir:DIR, dir:DIR, mbox:FILE ... */
	char *auth;			/* SASL mechanism; NULL: choose */
	char *password_file;
	char *password_command;
	char *token_command;
	struct mt_strlist folders;	/* IMAP mailboxes; none: INBOX */
	char *state_dir;
	unsigned long long interval;	/* seconds between runs */
	int delete_mail;		/* delete = yes */
	unsigned long long keep;	/* delete this long after delivery */
	unsigned long long max_size;	/* bytes; 0: any size */
	int first_run_new;		/* firstRun = new */
	/* Options of the delivery target (struct mt_deliver_opts). */
	char *deliver_recipient;
	char *deliver_recipient_header;
	char *deliver_sender;
	char *deliver_helo;
	unsigned long long deliver_timeout;	/* seconds; 0: the target's */
	char *deliver_ca_file;
	char *deliver_check_host;
	int deliver_starttls;		/* smtp://, lmtp://: use STARTTLS */

	struct mt_optset set;		/* set in this section */
	struct mt_optset inherited;	/* taken from the global section */
	unsigned set_line[MT_CONFIG_MAX_OPTIONS];	/* for messages */
};

struct mt_config {
	char *path;
	int foreground;			/* 2: quiet (no stderr log) */
	char *pid_file;			/* NULL: none */
	char *setuid_user;
	char *setgid_group;
	char *chroot_dir;
	char *output;			/* log file; NULL: syslog or stderr */
	int syslog;
	int debug_level;
	int log_facility;
	unsigned long long workers;	/* 0: one per CPU */
	struct mt_optset set;

	struct mt_service_conf **services;
	size_t nservices;
};

struct mt_config_problem {
	char *file;			/* NULL: not tied to a file */
	unsigned line;			/* 0: not tied to a line */
	int error;			/* 0: warning */
	char *msg;
};

struct mt_config_report {
	struct mt_config_problem *v;
	size_t n;
	size_t errors;
};

/*
 * Load path. Returns NULL when any error was found (all are in report) or
 * memory ran out. Warnings do not stop loading. report must be zeroed by the
 * caller and freed with mt_config_report_free().
 */
struct mt_config *mt_config_load(const char *path,
    struct mt_config_report *report);
/* The same, from a buffer (tests and fuzzing); name is used in messages. */
struct mt_config *mt_config_load_buffer(const char *name, const char *buf,
    size_t len, struct mt_config_report *report);
void mt_config_free(struct mt_config *cfg);

/*
 * Take service i out of cfg: the caller owns it from now on and frees it
 * with mt_service_conf_free(); cfg keeps an empty slot.
 */
struct mt_service_conf *mt_config_take_service(struct mt_config *cfg,
    size_t i);
void mt_service_conf_free(struct mt_service_conf *svc);

/* Append a problem; printf-style. Used by later stages (tls, services). */
void mt_config_report_add(struct mt_config_report *report, const char *file,
    unsigned line, int error, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* One line per problem: "file:line: error: msg". */
void mt_config_report_print(const struct mt_config_report *report, FILE *out);
void mt_config_report_free(struct mt_config_report *report);

/* Print the effective configuration (defaults included) in config syntax. */
void mt_config_dump(const struct mt_config *cfg, FILE *out);

/*
 * Whether s may be sent as an SMTP EHLO name: a host name (letters, digits,
 * hyphens, dots; one label is enough) or an address literal such as
 * "[192.0.2.1]" or "[IPv6:2001:db8::1]", at most MT_CONFIG_EHLO_MAX bytes.
 */
int mt_config_ehlo_name_valid(const char *s);

/* Whether global option NAME was written in the file (even empty). */
int mt_config_global_is_set(const struct mt_config *cfg, const char *name);

/* Whether option NAME was set in this service's section or inherited. */
int mt_service_conf_is_set(const struct mt_service_conf *svc, const char *name);

/* The line where an option was set for a service (or the section's line). */
unsigned mt_service_conf_line(const struct mt_service_conf *svc,
    const char *name);

#endif
