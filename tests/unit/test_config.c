#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/ocsp.h>
#include <openssl/ssl.h>

#include "mailtunnel/config.h"
#include "mailtunnel/log.h"

static struct mt_config_report report;
static char problems[16384];

static struct mt_config *
load(const char *text)
{
	struct mt_config *cfg;
	FILE *f;

	mt_config_report_free(&report);
	cfg = mt_config_load_buffer("test.conf", text, strlen(text), &report);
	f = fmemopen(problems, sizeof(problems), "w");
	mt_config_report_print(&report, f);
	fclose(f);
	return cfg;
}

#define assert_problem(s) do { \
	if (strstr(problems, (s)) == NULL) \
		fail_msg("expected problem '%s' in:\n%s", (s), problems); \
} while (0)

static const char user_conf_1[] =
    "; *****  \n"
    "; * Service definitions (at least one service has to be defined) *  \n"
    "; *****  \n"
    "  \n"
    "; Example SSL server mode services  \n"
    "  \n"
    "[pop3s]  \n"
    ";sslVersion = TLSv1  \n"
    ";accept = 995  \n"
    ";connect = 110  \n"
    "  \n"
    "[imaps]  \n"
    ";accept = 993  \n"
    ";connect = 143  \n"
    "  \n"
    "[ssmtp]  \n"
    ";sslVersion = TLSv1  \n"
    ";accept = 465  \n"
    ";connect = 25  \n"
    "  \n"
    "; Example SSL client mode services  \n"
    "  \n"
    "[gmail-pop3]  \n"
    "client = yes  \n"
    "accept = 127.0.0.1:110  \n"
    "connect = pop.gmail.com:995  \n"
    "  \n"
    "[gmail-imap]  \n"
    ";client = yes  \n"
    ";accept = 127.0.0.1:143  \n"
    ";connect = imap.gmail.com:993  \n"
    "  \n"
    "[gmail-smtp]  \n"
    "sslVersion = SSLV3  \n"
    "client = yes  \n"
    "accept = 127.0.0.1:25  \n"
    "connect = smtp.gmail.com:465  \n";

static void
test_user_config(void **state)
{
	struct mt_config *cfg = load(user_conf_1);
	struct mt_service_conf *s;

	(void)state;
	assert_non_null(cfg);
	assert_int_equal(report.errors, 0);
	assert_problem("test.conf:7: warning: [pop3s] has no options "
	    "(all commented out?); skipped");
	assert_problem("test.conf:12: warning: [imaps] has no options");
	assert_problem("test.conf:16: warning: [ssmtp] has no options");
	assert_problem("test.conf:28: warning: [gmail-imap] has no options");
	assert_problem("test.conf:34: warning: [gmail-smtp] sslVersion: SSLV3 "
	    "is refused by every current mail server and by OpenSSL 3; TLS "
	    "1.2 is the floor, so TLS 1.2 and newer will be used");
	assert_int_equal(cfg->nservices, 2);
	s = cfg->services[0];
	assert_string_equal(s->name, "gmail-pop3");
	assert_int_equal(s->client, 1);
	assert_string_equal(s->accept.host, "127.0.0.1");
	assert_string_equal(s->accept.port, "110");
	assert_int_equal(s->nconnect, 1);
	assert_string_equal(s->connect[0].host, "pop.gmail.com");
	assert_string_equal(s->connect[0].port, "995");
	assert_int_equal(s->tls.verify_chain, 1);
	assert_int_equal(s->tls.version_min, TLS1_2_VERSION);
	s = cfg->services[1];
	assert_string_equal(s->name, "gmail-smtp");
	assert_int_equal(s->tls.version_min, TLS1_2_VERSION);
	assert_int_equal(s->tls.version_max, 0);
	mt_config_free(cfg);
}

static void
test_defaults(void **state)
{
	struct mt_config *cfg = load("[a]\nclient=yes\naccept=127.0.0.1:1\n"
	    "connect=h:2\n");
	struct mt_service_conf *s;

	(void)state;
	assert_non_null(cfg);
	assert_int_equal(cfg->foreground, 0);
	assert_null(cfg->pid_file);
	assert_int_equal(cfg->syslog, 1);
	assert_int_equal(cfg->debug_level, MT_LOG_NOTICE);
	assert_int_equal(cfg->workers, 0);
	s = cfg->services[0];
	assert_int_equal(s->tls.verify_chain, 1);
	assert_int_equal(s->tls.verify_peer, 0);
	assert_int_equal(s->tls.security_level, 2);
	assert_int_equal(s->tls.session_cache_size, 1000);
	assert_int_equal(s->tls.session_cache_timeout, 300);
	assert_int_equal(s->timeout_connect, 10);
	assert_int_equal(s->timeout_idle, 43200);
	assert_int_equal(s->timeout_close, 60);
	assert_int_equal(s->timeout_busy, 300);
	assert_int_equal(s->retry_ms, 0);
	assert_int_equal(s->delay, 0);
	assert_int_equal(s->failover_rr, 0);
	assert_null(s->tls.sni);
	assert_null(s->tls.ca_file);
	mt_config_free(cfg);
}

static void
test_syntax(void **state)
{
	struct mt_config *cfg;

	(void)state;
	/* BOM, CRLF, case-insensitive names, '#' comments, indentation that
	 * inih would take as a continuation, ';' inside a value. */
	cfg = load("\xEF\xBB\xBF# comment\r\nForeGround = YES\r\n"
	    "[svc]\r\n  CLIENT   =   yes  \r\n   accept = 127.0.0.1:1110\r\n"
	    "\tconnect = mail.example.org:995\r\n"
	    "sni = a;b\r\n; comment\r\n");
	assert_non_null(cfg);
	assert_int_equal(cfg->foreground, 1);
	assert_string_equal(cfg->services[0]->tls.sni, "a;b");
	assert_string_equal(cfg->services[0]->connect[0].host,
	    "mail.example.org");
	mt_config_free(cfg);
}

static void
test_long_lines(void **state)
{
	char *text = malloc(40000);
	struct mt_config *cfg;
	size_t n;

	(void)state;
	/* A 10 000 byte value (inih alone stops at 200). */
	n = (size_t)sprintf(text, "[svc]\nclient = yes\naccept = 1.2.3.4:5\n"
	    "connect = h:1\nciphersuites = ");
	memset(text + n, 'A', 10000);
	strcpy(text + n + 10000, "\n");
	cfg = load(text);
	assert_non_null(cfg);
	assert_int_equal(strlen(cfg->services[0]->tls.ciphersuites), 10000);
	mt_config_free(cfg);

	/* Past 16 KiB: an error for that line, and the next line still read. */
	n = (size_t)sprintf(text, "[svc]\nsni = ");
	memset(text + n, 'B', 20000);
	strcpy(text + n + 20000, "\nbogus = 1\n");
	assert_null(load(text));
	assert_problem("test.conf:2: error: line longer than 16384 bytes");
	assert_problem("test.conf:3: error: unknown option 'bogus'");
	free(text);
}

static void
test_empty_value_unsets(void **state)
{
	struct mt_config *cfg;

	(void)state;
	cfg = load("pid = /run/x.pid\nCAfile = /etc/ca.pem\n"
	    "[a]\nclient = yes\naccept = 127.0.0.1:1\nconnect = h:1\n"
	    "CAfile =\nTIMEOUTidle =\n"
	    "[b]\nclient = yes\naccept = 127.0.0.1:2\nconnect = h:1\n");
	assert_non_null(cfg);
	assert_string_equal(cfg->pid_file, "/run/x.pid");
	assert_null(cfg->services[0]->tls.ca_file);
	assert_int_equal(cfg->services[0]->timeout_idle, 43200);
	assert_string_equal(cfg->services[1]->tls.ca_file, "/etc/ca.pem");
	mt_config_free(cfg);

	cfg = load("pid =\n");
	assert_non_null(cfg);
	assert_null(cfg->pid_file);
	mt_config_free(cfg);
}

static void
test_inheritance(void **state)
{
	struct mt_config *cfg;
	struct mt_service_conf *a, *b;

	(void)state;
	cfg = load("client = yes\ncheckHost = global.example\n"
	    "options = NO_TICKET\nTIMEOUTidle = 5m\nverifyChain = no\n"
	    "socket = r:TCP_KEEPIDLE=60\n"
	    "[a]\naccept = 127.0.0.1:1\nconnect = h:1\n"
	    "checkHost = a.example\ncheckHost = a2.example\n"
	    "options = NO_COMPRESSION\nsocket = l:SO_KEEPALIVE=1\n"
	    "[b]\naccept = 127.0.0.1:2\nconnect = h:1\nverifyChain = yes\n");
	assert_non_null(cfg);
	a = cfg->services[0];
	b = cfg->services[1];
	assert_int_equal(a->client, 1);
	assert_int_equal(a->timeout_idle, 300);
	assert_int_equal(a->tls.verify_chain, 0);
	assert_int_equal(b->tls.verify_chain, 1);
	/* A list set in a section replaces the inherited list... */
	assert_int_equal(a->tls.check_host.n, 2);
	assert_string_equal(a->tls.check_host.v[0], "a.example");
	assert_int_equal(b->tls.check_host.n, 1);
	assert_string_equal(b->tls.check_host.v[0], "global.example");
	/* ...but TLS and socket options add to the inherited ones. */
	assert_true(a->tls.options_on & SSL_OP_NO_TICKET);
	assert_true(a->tls.options_on & SSL_OP_NO_COMPRESSION);
	assert_true(b->tls.options_on & SSL_OP_NO_TICKET);
	assert_false(b->tls.options_on & SSL_OP_NO_COMPRESSION);
	assert_int_equal(a->nsockopts, 2);
	assert_int_equal(b->nsockopts, 1);
	assert_true(mt_service_conf_is_set(b, "TIMEOUTidle"));
	assert_false(mt_service_conf_is_set(b, "TIMEOUTbusy"));
	assert_int_equal(mt_service_conf_line(a, "checkHost"), 10);
	mt_config_free(cfg);
}

/* stunnel's service-level "debug = LEVEL": its own, never inherited. */
static void
test_service_debug(void **state)
{
	struct mt_config *cfg;

	(void)state;
	cfg = load("debug = mail.info\nclient = yes\nconnect = h:1\n"
	    "[a]\naccept = 127.0.0.1:1\nDebug = 7\n"
	    "[b]\naccept = 127.0.0.1:2\ndebug = warning\n"
	    "[c]\naccept = 127.0.0.1:3\n"
	    "[f]\nfetch = pop3s://u@h\ndeliver = maildir:/m\n"
	    "passwordFile = /pw\ndebug = err\n");
	assert_non_null(cfg);
	assert_int_equal(report.n, 0);
	assert_int_equal(cfg->debug_level, MT_LOG_INFO);
	assert_int_equal(cfg->log_facility, LOG_MAIL);
	assert_int_equal(cfg->services[0]->debug_level, MT_LOG_DEBUG);
	assert_int_equal(cfg->services[1]->debug_level, MT_LOG_WARNING);
	assert_int_equal(cfg->services[2]->debug_level, -1);
	assert_int_equal(cfg->services[3]->debug_level, MT_LOG_ERR);
	assert_int_equal(mt_service_conf_line(cfg->services[1], "debug"), 9);
	assert_true(mt_config_global_is_set(cfg, "debug"));
	mt_config_free(cfg);
}

/*
 * Refused stunnel options still take the one value that states what
 * mailtunnel does anyway (stunnel's default), as generated files write.
 */
static void
test_unsupported_default_values(void **state)
{
	struct mt_config *cfg;

	(void)state;
	cfg = load("fips = no\nlog = Append\nlibwrap = off\n"
	    "logId = sequential\n[a]\nclient = yes\naccept = 1\n"
	    "connect = h:1\ntransparent = none\npty = no\nOCSPaia = no\n"
	    "sessionResume = no\nrenegotiation = no\nfips =\n");
	assert_non_null(cfg);
	assert_int_equal(report.errors, 0);
	assert_int_equal(cfg->services[0]->tls.no_resume, 1);
	assert_int_equal(cfg->services[0]->tls.no_renegotiation, 1);
	mt_config_free(cfg);

	/* The OCSP options, with stunnel's defaults. */
	cfg = load("OCSPaia = yes\n[a]\nclient = yes\naccept = 1\n"
	    "connect = h:1\nOCSP = http://ocsp.example.net:8080/q?x=1\n"
	    "[b]\nclient = yes\naccept = 2\nconnect = h:1\nOCSPaia = no\n"
	    "OCSPrequire = no\nOCSPnonce = yes\nTIMEOUTocsp = 10s\n");
	assert_non_null(cfg);
	assert_int_equal(cfg->services[0]->ocsp.aia, 1);
	assert_string_equal(cfg->services[0]->ocsp.url,
	    "http://ocsp.example.net:8080/q?x=1");
	assert_int_equal(cfg->services[0]->ocsp.require, 1);
	assert_int_equal(cfg->services[0]->ocsp.nonce, 0);
	assert_int_equal(cfg->services[0]->ocsp.timeout, 5);
	assert_int_equal(cfg->services[1]->ocsp.aia, 0);
	assert_int_equal(cfg->services[1]->ocsp.require, 0);
	assert_int_equal(cfg->services[1]->ocsp.nonce, 1);
	assert_int_equal(cfg->services[1]->ocsp.timeout, 10);
	mt_config_free(cfg);

	/* OCSPflag adds up within a section, replaces the global ones. */
	cfg = load("OCSPflag = NOCHAIN\n[a]\nclient = yes\naccept = 1\n"
	    "connect = h:1\nOCSPflag = NOINTERN\nOCSPflag = trustother\n"
	    "[b]\nclient = yes\naccept = 2\nconnect = h:1\n");
	assert_non_null(cfg);
	assert_int_equal(cfg->services[0]->ocsp.flags,
	    OCSP_NOINTERN | OCSP_TRUSTOTHER);
	assert_int_equal(cfg->services[1]->ocsp.flags, OCSP_NOCHAIN);
	mt_config_free(cfg);
}

static void
test_connect_failover(void **state)
{
	struct mt_config *cfg;
	struct mt_service_conf *s;

	(void)state;
	cfg = load("[a]\nclient = yes\naccept = 127.0.0.1:1\n"
	    "connect = one.example:995\nconnect = [2001:db8::1]:995\n"
	    "connect = 10.0.0.1:pop3s\nconnect = 110\nfailover = rr\n");
	assert_non_null(cfg);
	s = cfg->services[0];
	assert_int_equal(s->nconnect, 4);
	assert_string_equal(s->connect[1].host, "2001:db8::1");
	assert_string_equal(s->connect[2].port, "pop3s");
	assert_null(s->connect[3].host);
	assert_string_equal(s->connect[3].port, "110");
	assert_int_equal(s->failover_rr, 1);
	mt_config_free(cfg);
}

static void
test_accept_forms(void **state)
{
	struct mt_config *cfg;

	(void)state;
	cfg = load("[a]\nclient = yes\naccept = 110\nconnect = h:1\n"
	    "[b]\nclient = yes\naccept = :::111\nconnect = h:1\n"
	    "[c]\nclient = yes\naccept = [::1]:112\nconnect = h:1\n");
	assert_non_null(cfg);
	assert_problem("test.conf:3: warning: [a] accept: '110' listens on all "
	    "addresses, so other machines can use this plaintext tunnel; "
	    "write accept = 127.0.0.1:110 to keep it local");
	assert_null(cfg->services[0]->accept.host);
	assert_string_equal(cfg->services[1]->accept.host, "::");
	assert_string_equal(cfg->services[2]->accept.host, "::1");
	mt_config_free(cfg);
}

struct bad_case {
	const char *text;
	const char *problem;
};

static const struct bad_case bad_cases[] = {
	{ "[a]\nconect = h:1\n",
	  "test.conf:2: error: unknown option 'conect'; did you mean "
	  "'connect'?" },
	{ "[a]\nCAFil = x\n", "did you mean 'CAfile'?" },
	{ "[a]\nverifyChian = yes\n", "did you mean 'verifyChain'?" },
	{ "[a]\nfrobnicate = 1\n",
	  "test.conf:2: error: unknown option 'frobnicate' (see "
	  "mailtunnel.conf(5) for the options)" },
	{ "[a]\nexec = /bin/sh\n",
	  "test.conf:2: error: [a] exec: this stunnel option is not supported "
	  "yet by mailtunnel (running a program instead of connecting)" },
	{ "[a]\nOCSPflag = NOCERTS\n", "test.conf:2: error: [a] OCSPflag: "
	  "NOCERTS shapes a responder's own answers; it means nothing when "
	  "checking them" },
	{ "[a]\nOCSPflag = FAST\n", "error: [a] OCSPflag: unknown flag 'FAST' "
	  "(NOINTERN, NOSIGS," },
	{ "[a]\nOCSPflag = NOCASIGN\n", "error: [a] OCSPflag: NOCASIGN is "
	  "defined by OpenSSL but has no effect in it; remove it" },
	{ "[a]\nOCSPflag = noverify\n", "test.conf:2: warning: [a] OCSPflag: "
	  "NOVERIFY: OCSP answers are taken without checking who signed the "
	  "responses" },
	{ "[a]\nOCSP = https://ocsp.example.net/\n", "test.conf:2: error: [a] "
	  "OCSP: expected an http:// URL such as http://ocsp.example.net/, not "
	  "'https://ocsp.example.net/' (OCSP responders answer over plain "
	  "HTTP; their answers are signed)" },
	{ "[a]\nOCSP = ocsp\n", "error: [a] OCSP: expected an http:// URL" },
	{ "[a]\nTIMEOUTocsp = 0\n", "error: [a] TIMEOUTocsp:" },
	{ "[a]\nfips = yes\n", "test.conf:2: error: [a] fips: this stunnel "
	  "option is not supported yet by mailtunnel (FIPS mode); only "
	  "'fips = no', which is what mailtunnel does, is accepted" },
	{ "logId = unique\n", "error: logId: this stunnel option is not "
	  "supported yet by mailtunnel (other connection id styles); only "
	  "'logId = sequential'" },
	{ "[a]\nprotocol = nntp\n",
	  "test.conf:2: error: [a] protocol: 'nntp' is a stunnel protocol that "
	  "mailtunnel does not support yet (it speaks pop3, imap and smtp)" },
	{ "[a]\nprotocol = pop4\n",
	  "test.conf:2: error: [a] protocol: expected pop3, imap or smtp, not "
	  "'pop4'" },
	{ "[a]\nprotocolHost = bad name\n",
	  "test.conf:2: error: [a] protocolHost: expected a host name such as "
	  "relay.example.org or an address literal such as [192.0.2.1], not "
	  "'bad name'" },
	{ "[a]\nprotocolHost = -relay.example\n", "not '-relay.example'" },
	{ "[a]\nprotocolHost = relay-.example\n", "not 'relay-.example'" },
	{ "[a]\nprotocolHost = relay..example\n", "not 'relay..example'" },
	{ "[a]\nprotocolHost = relay.example.\n", "not 'relay.example.'" },
	{ "[a]\nprotocolHost = [300.1.1.1]\n", "not '[300.1.1.1]'" },
	{ "[a]\nprotocolHost = [IPv6:1.2.3.4]\n", "not '[IPv6:1.2.3.4]'" },
	{ "[a]\nprotocolHost = [::1]\n", "not '[::1]'" },
	{ "[a]\nprotocolHost = relay_1.example\n", "not 'relay_1.example'" },
	{ "[a]\nprotocolHost = "
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.x\n",
	  "protocolHost: expected a host name" },
	{ "client = yes\nconnect = h:1\n[a]\naccept = 1.2.3.4:1\n"
	  "protocol = pop3\nprotocolHost = relay.example\n",
	  "test.conf:6: error: [a] protocolHost is only used with protocol = "
	  "smtp (as the EHLO name), and this service has protocol = pop3; set "
	  "'protocol = smtp' or remove protocolHost" },
	{ "client = yes\nconnect = h:1\n[a]\naccept = 1.2.3.4:1\n"
	  "protocolHost = relay.example\n",
	  "test.conf:5: error: [a] protocolHost is only used with protocol = "
	  "smtp (as the EHLO name), and this service has no protocol; set "
	  "'protocol = smtp' or remove protocolHost" },
	{ "[a]\nclient = no\n",
	  "test.conf:2: error: [a] client: server mode (client = no) is not "
	  "supported yet" },
	{ "[a]\nclient = maybe\n",
	  "error: [a] client: expected yes or no, not 'maybe'" },
	{ "[a]\npid = /x\n", "test.conf:2: error: [a] pid: a global option; "
	  "move it above the first [section]" },
	{ "[a]\naccept = 1.2.3.4:1\naccept = 1.2.3.4:2\n",
	  "test.conf:3: error: [a] accept: set twice (first on line 2)" },
	{ "[a]\naccept = 99999\n", "error: [a] accept: '99999': port must be "
	  "a number from 1 to 65535 or a service name from /etc/services" },
	{ "[a]\nconnect = nosuchservice\n", "port must be a number" },
	{ "[a]\nconnect = :995\n", "connect: ':995': host missing before ':'" },
	{ "[a]\nconnect = 2001:db8::1::995\n", "not a valid IPv6 address" },
	{ "[a]\nconnect = [::1]995\n", "expected [IPv6]:port" },
	{ "[a]\nTIMEOUTidle = soon\n", "error: [a] TIMEOUTidle: expected seconds "
	  "or a duration such as 30s, 5m, 2h, 1d, from 1s to 30d, not 'soon'" },
	{ "[a]\nTIMEOUTconnect = 0\n", "from 1s to 1d, not '0'" },
	{ "workers = 1000\n", "error: workers: expected a whole number from 0 "
	  "to 256, not '1000'" },
	{ "debug = loud\n", "error: debug: expected a level 0-7" },
	{ "[a]\ndebug = loud\n", "test.conf:2: error: [a] debug: expected a "
	  "level 0-7 or emerg, alert, crit, err, warning, notice, info, debug, "
	  "not 'loud'" },
	{ "[a]\ndebug = mail.info\n", "test.conf:2: error: [a] debug: a "
	  "syslog facility can only be set in the global section; write "
	  "'debug = info' here" },
	{ "foreground = perhaps\n", "expected yes, no or quiet" },
	{ "setuid = no-such-user-here\n",
	  "error: setuid: no such user 'no-such-user-here'" },
	{ "setgid = no-such-group-here\n",
	  "error: setgid: no such group 'no-such-group-here'" },
	{ "[a]\nsslVersionMax = TLSv1.1\n", "sslVersionMax: TLSv1.1 is below "
	  "TLS 1.2, the oldest version mailtunnel speaks" },
	{ "[a]\nsslVersion = TLSv9\n",
	  "sslVersion: expected all, TLSv1.2 or TLSv1.3, not 'TLSv9'" },
	{ "[a]\noptions = NO_SUCH\n", "options: unknown TLS option 'NO_SUCH'" },
	{ "[a]\ncheckIP = example.com\n",
	  "checkIP: 'example.com' is not an IPv4 or IPv6 address" },
	{ "[a]\nsecurityLevel = 1\n", "from 2 to 5, not '1'" },
	{ "[a]\nverify = 7\n", "expected a level from 0 to 4" },
	{ "[a]\nretry = often\n", "expected yes, no or a delay" },
	{ "[a]\nfailover = random\n", "expected rr or prio" },
	{ "[a]\nsocket = x:TCP_NODELAY=1\n", "expected a:, l: or r:" },
	{ "[a]\nsocket = l:SO_FOO=1\n", "unknown socket option" },
	{ "[a]\nsocket = l:SO_LINGER=5\n", "expected ONOFF:SECONDS" },
	{ "[a]\nsocket = l:TCP_NODELAY\n", "expected NAME=VALUE" },
	{ "[a]\nsocket = l:TCP_NODELAY=x\n", "expected a number" },
	{ "just some words\n",
	  "test.conf:1: error: expected 'option = value'" },
	{ "= value\n", "error: option name missing before '='" },
	{ "[unterminated\n", "error: section header without closing ']'" },
	{ "[]\n", "error: empty section name '[]'" },
	{ "[a]]\n", "error: section name contains '[' or ']'" },
	{ "include = /nonexistent-dir\n", "include: cannot read directory "
	  "'/nonexistent-dir': No such file or directory" },
	{ "[a]\naccept = 1.2.3.4:1\nconnect = h:1\n",
	  "test.conf:1: error: [a] is a server-mode service in stunnel terms "
	  "(no 'client = yes'); mailtunnel supports client mode: add "
	  "'client = yes'" },
	{ "[a]\nclient = yes\nconnect = h:1\n",
	  "test.conf:1: error: [a] no 'accept' address" },
	{ "[a]\nclient = yes\naccept = 1.2.3.4:1\n",
	  "test.conf:1: error: [a] no 'connect' target" },
	{ "client = yes\nconnect = h:1\n[a]\naccept = 1.2.3.4:1\n"
	  "[A]\naccept = 1.2.3.4:2\n",
	  "test.conf:5: error: [A] defined twice (first at test.conf:3)" },
	{ "client = yes\nconnect = h:1\n[a]\naccept = 1.2.3.4:1\n"
	  "[b]\naccept = 1.2.3.4:1\n",
	  "test.conf:6: error: [b] accept = 1.2.3.4:1 is already used by [a]" },
	{ "client = yes\nconnect = h:1\n[a]\naccept = 11\n"
	  "[b]\naccept = 127.0.0.1:11\n", "is already used by [a]" },
	{ "[a]\nsslVersionMin = TLSv1.3\nsslVersionMax = TLSv1.2\n"
	  "client = yes\naccept = 1.2.3.4:1\nconnect = h:1\n",
	  "test.conf:3: error: [a] sslVersionMax is below sslVersionMin" },
};

static void
test_bad_input(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		if (load(bad_cases[i].text) != NULL)
			fail_msg("case %zu loaded:\n%s", i, bad_cases[i].text);
		if (strstr(problems, bad_cases[i].problem) == NULL)
			fail_msg("case %zu: expected '%s' in:\n%s", i,
			    bad_cases[i].problem, problems);
	}
}

static void
test_all_problems_reported(void **state)
{
	(void)state;
	assert_null(load("bogus1 = 1\n[a]\nbogus2 = 2\nclient = no\n"
	    "accept = 1\n"));
	assert_problem("test.conf:1: error: unknown option 'bogus1'");
	assert_problem("test.conf:3: error: unknown option 'bogus2'");
	assert_problem("test.conf:4: error: [a] client: server mode");
	assert_problem("test.conf:5: warning: [a] accept: '1' listens");
	assert_int_equal(report.errors, 3);
}

static void
test_legacy_verify(void **state)
{
	struct mt_config *cfg;

	(void)state;
	cfg = load("client = yes\nconnect = h:1\n"
	    "[a]\naccept = 1.2.3.4:1\nverify = 0\n"
	    "[b]\naccept = 1.2.3.4:2\nverify = 3\n"
	    "[c]\naccept = 1.2.3.4:3\nverify = 4\n");
	assert_non_null(cfg);
	assert_int_equal(cfg->services[0]->tls.verify_chain, 0);
	assert_int_equal(cfg->services[1]->tls.verify_chain, 1);
	assert_int_equal(cfg->services[1]->tls.verify_peer, 1);
	assert_int_equal(cfg->services[2]->tls.verify_chain, 0);
	assert_int_equal(cfg->services[2]->tls.verify_peer, 1);
	mt_config_free(cfg);
}

static void
test_versions(void **state)
{
	struct mt_config *cfg;

	(void)state;
	cfg = load("client = yes\nconnect = h:1\n"
	    "[a]\naccept = 1.2.3.4:1\nsslVersion = TLSv1.3\n"
	    "[b]\naccept = 1.2.3.4:2\nsslVersionMin = TLSv1\n"
	    "[c]\naccept = 1.2.3.4:3\nsslVersionMax = TLSv1.2\n");
	assert_non_null(cfg);
	assert_int_equal(cfg->services[0]->tls.version_min, TLS1_3_VERSION);
	assert_int_equal(cfg->services[0]->tls.version_max, TLS1_3_VERSION);
	assert_int_equal(cfg->services[1]->tls.version_min, TLS1_2_VERSION);
	assert_problem("test.conf:8: warning: [b] sslVersionMin: TLSv1 is "
	    "refused");
	assert_int_equal(cfg->services[2]->tls.version_max, TLS1_2_VERSION);
	mt_config_free(cfg);
}

static void
test_no_services(void **state)
{
	struct mt_config *cfg = load("; nothing here\n");

	(void)state;
	assert_non_null(cfg);
	assert_int_equal(cfg->nservices, 0);
	assert_problem("warning: no services defined");
	mt_config_free(cfg);
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void
test_include(void **state)
{
	char dir[] = "/tmp/mt-conf-XXXXXX", path[256];
	struct mt_config *cfg;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/conf.d", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/conf.d/20-b.conf", dir);
	write_file(path, "[b]\naccept = 127.0.0.1:2\nCAfile = ca.pem\n");
	snprintf(path, sizeof(path), "%s/conf.d/10-a.conf", dir);
	write_file(path, "[a]\naccept = 127.0.0.1:1\n");
	snprintf(path, sizeof(path), "%s/conf.d/.hidden", dir);
	write_file(path, "garbage\n");
	snprintf(path, sizeof(path), "%s/conf.d/10-a.conf~", dir);
	write_file(path, "garbage\n");
	snprintf(path, sizeof(path), "%s/conf.d/30.conf.dpkg-old", dir);
	write_file(path, "garbage\n");
	snprintf(path, sizeof(path), "%s/main.conf", dir);
	write_file(path, "client = yes\nconnect = h:1\ninclude = conf.d\n");

	mt_config_report_free(&report);
	cfg = mt_config_load(path, &report);
	assert_non_null(cfg);
	assert_int_equal(report.errors, 0);
	assert_int_equal(cfg->nservices, 2);
	assert_string_equal(cfg->services[0]->name, "a");
	assert_string_equal(cfg->services[1]->name, "b");
	/* Relative paths are relative to the file that says them. */
	snprintf(path, sizeof(path), "%s/conf.d/ca.pem", dir);
	assert_string_equal(cfg->services[1]->tls.ca_file, path);
	mt_config_free(cfg);

	/* A file that includes its own directory. */
	snprintf(path, sizeof(path), "%s/conf.d/40-loop.conf", dir);
	write_file(path, "include = .\n");
	snprintf(path, sizeof(path), "%s/main.conf", dir);
	mt_config_report_free(&report);
	assert_null(mt_config_load(path, &report));
	assert_true(report.errors > 0);
	assert_non_null(strstr(report.v[report.n - 1].msg,
	    "nested more than 8 deep"));

	assert_int_equal(system("rm -rf /tmp/mt-conf-*"), 0);
	mt_config_report_free(&report);
	assert_null(mt_config_load("/nonexistent.conf", &report));
	assert_string_equal(report.v[0].msg,
	    "cannot open: No such file or directory");
}

/* stunnel's protocols other than pop3, imap and smtp are refused by name. */
static void
test_protocol_stunnel_names(void **state)
{
	static const char *const names[] = { "cifs", "capwin", "capwinctrl",
	    "connect", "ldap", "nntp", "pgsql", "proxy", "socks", "NNTP" };
	char text[128], want[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(text, sizeof(text), "[a]\nprotocol = %s\n", names[i]);
		assert_null(load(text));
		snprintf(want, sizeof(want), "[a] protocol: '%s' is a stunnel "
		    "protocol that mailtunnel does not support yet", i < 9 ?
		    names[i] : "nntp");
		assert_problem(want);
	}
}

static void
test_protocol(void **state)
{
	struct mt_config *cfg;

	(void)state;
	cfg = load("client = yes\nconnect = h:25\n"
	    "protocolHost = relay.example\n"
	    "[pop]\naccept = 1.2.3.4:1\nprotocol = POP3\n"
	    "[imap]\naccept = 1.2.3.4:2\nprotocol = Imap\n"
	    "[smtp]\naccept = 1.2.3.4:3\nprotocol = smtp\n"
	    "[own]\naccept = 1.2.3.4:4\nprotocol = smtp\n"
	    "protocolHost = [IPv6:2001:db8::1]\n"
	    "[lit]\naccept = 1.2.3.4:5\nprotocol = smtp\n"
	    "protocolHost = [192.0.2.1]\n"
	    "[local]\naccept = 1.2.3.4:6\nprotocol = smtp\n"
	    "protocolHost = localhost\n");
	assert_non_null(cfg);
	assert_int_equal(report.errors, 0);
	assert_int_equal(cfg->services[0]->protocol, MT_PROTO_POP3);
	assert_int_equal(cfg->services[1]->protocol, MT_PROTO_IMAP);
	assert_int_equal(cfg->services[2]->protocol, MT_PROTO_SMTP);
	/* Inherited protocolHost: used by smtp, ignored by pop3 and imap. */
	assert_string_equal(cfg->services[2]->protocol_host, "relay.example");
	assert_string_equal(cfg->services[0]->protocol_host, "relay.example");
	assert_string_equal(cfg->services[3]->protocol_host,
	    "[IPv6:2001:db8::1]");
	assert_string_equal(cfg->services[4]->protocol_host, "[192.0.2.1]");
	assert_string_equal(cfg->services[5]->protocol_host, "localhost");
	mt_config_free(cfg);

	/* An empty value returns to no protocol, whatever was inherited. */
	cfg = load("client = yes\nconnect = h:143\nprotocol = imap\n"
	    "[a]\naccept = 1.2.3.4:1\nprotocol =\n[b]\naccept = 1.2.3.4:2\n");
	assert_non_null(cfg);
	assert_int_equal(cfg->services[0]->protocol, MT_PROTO_NONE);
	assert_int_equal(cfg->services[1]->protocol, MT_PROTO_IMAP);
	mt_config_free(cfg);

	cfg = load("client = yes\n[a]\naccept = 1.2.3.4:1\n"
	    "connect = h:995\nconnect = h:110\nprotocol = pop3\n"
	    "[b]\naccept = 1.2.3.4:2\nconnect = h:smtps\nprotocol = smtp\n"
	    "[c]\naccept = 1.2.3.4:3\nconnect = h:993\n");
	assert_non_null(cfg);
	assert_problem("test.conf:6: warning: [a] protocol = pop3, but connect "
	    "port 995 usually speaks TLS from the first byte, without "
	    "STARTTLS; remove 'protocol' for such ports");
	assert_problem("test.conf:10: warning: [b] protocol = smtp, but connect "
	    "port smtps usually");
	assert_null(strstr(problems, "[c]"));
	mt_config_free(cfg);
}

/* Load text, which must load, and print it as -t -v does into buf. */
static void
dump_of(const char *text, char *buf, size_t size)
{
	struct mt_config *cfg = load(text);
	FILE *f;

	assert_non_null(cfg);
	f = fmemopen(buf, size, "w");
	mt_config_dump(cfg, f);
	fclose(f);
	mt_config_free(cfg);
}

static void
test_dump_round_trip(void **state)
{
	static char first[8192], second[8192];

	(void)state;
	dump_of("debug = info\nworkers = 2\n[svc]\nclient = yes\n"
	    "accept = 127.0.0.1:1110\nconnect = [::1]:995\nconnect = b:pop3s\n"
	    "checkHost = mail.example\ncheckIP = 10.0.0.1\n"
	    "options = NO_TICKET\noptions = -NO_COMPRESSION\n"
	    "socket = r:SO_LINGER=1:30\nsocket = a:SO_BINDTODEVICE=lo\n"
	    "TIMEOUTidle = 2h\nretry = 500\nsslVersionMax = TLSv1.2\n"
	    "protocol = SMTP\nprotocolHost = relay.example\ndebug = 7\n"
	    "sessionResume = no\nrenegotiation = no\n", first,
	    sizeof(first));
	assert_non_null(strstr(first, "connect = [::1]:995\n"));
	assert_non_null(strstr(first, "options = -NO_COMPRESSION\n"));
	assert_non_null(strstr(first, "socket = r:SO_LINGER=1:30\n"));
	assert_non_null(strstr(first, "TIMEOUTidle = 2h\n"));
	assert_non_null(strstr(first, "debug = info\n"));
	assert_non_null(strstr(first, "protocol = smtp\n"));
	assert_non_null(strstr(first, "protocolHost = relay.example\n"));
	assert_non_null(strstr(first, "\ndebug = debug\n"));
	assert_non_null(strstr(first, "\nsessionResume = no\n"));
	assert_non_null(strstr(first, "\nrenegotiation = no\n"));

	dump_of(first, second, sizeof(second));
	assert_string_equal(first, second);
}


static const char fetch_base[] =
    "[box]\nfetch = pop3s://alice@mail.example.org\n"
    "deliver = maildir:/var/mail/alice\npasswordFile = /etc/pw\n";

static void
test_fetch_service(void **state)
{
	struct mt_config *cfg;
	struct mt_service_conf *f, *t;

	(void)state;
	/* Globals: a tunnel option and fetch defaults; each kind takes its
	 * own and ignores the others'. */
	cfg = load("client = yes\ninterval = 15m\nstate = /srv/state\n"
	    "deliver = dir:/srv/in\n"
	    "[box]\nfetch = imaps://alice%40example.org@imap.example.org/Work\n"
	    "passwordCommand = pass show mail\nfolder = INBOX\n"
	    "folder = Archive\nkeep = 30d\nmaxSize = 20M\nfirstRun = new\n"
	    "auth = xoauth2\nCAfile = /etc/ca.pem\n"
	    "[tun]\naccept = 127.0.0.1:110\nconnect = h:995\n");
	assert_non_null(cfg);
	f = cfg->services[0];
	t = cfg->services[1];
	assert_int_equal(f->kind, MT_SERVICE_FETCH);
	assert_int_equal(t->kind, MT_SERVICE_TUNNEL);
	assert_string_equal(f->deliver, "dir:/srv/in");
	assert_string_equal(f->state_dir, "/srv/state");
	assert_int_equal(f->interval, 900);
	assert_int_equal(f->keep, 30 * 86400);
	assert_int_equal(f->max_size, 20 << 20);
	assert_int_equal(f->first_run_new, 1);
	assert_string_equal(f->auth, "XOAUTH2");
	assert_int_equal(f->folders.n, 2);
	assert_string_equal(f->tls.ca_file, "/etc/ca.pem");
	mt_config_free(cfg);

	cfg = load(fetch_base);
	assert_non_null(cfg);
	f = cfg->services[0];
	assert_int_equal(f->interval, 300);
	assert_int_equal(f->keep, MT_KEEP_FOREVER);
	assert_int_equal(f->delete_mail, 0);
	assert_int_equal(f->max_size, 0);
	assert_string_equal(f->state_dir, MT_LOCALSTATEDIR "/lib/mailtunnel");
	mt_config_free(cfg);
}

static const struct bad_case fetch_bad[] = {
	{ "fetch = pop3s://a@b\n", "test.conf:1: error: fetch: belongs in a "
	  "[section] (it makes the section a fetch service), not in the "
	  "global section" },
	{ "[box]\nfetch = pop3s://a@b\npasswordFile = /p\n",
	  "test.conf:1: error: [box] no 'deliver' target" },
	{ "[box]\nfetch = pop3s://a@b\ndeliver = maildir:/m\n",
	  "[box] no secret: give passwordFile, passwordCommand or, for OAuth, "
	  "tokenCommand" },
	{ "[box]\nfetch = pop3s://a@b\ndeliver = maildir:/m\n"
	  "passwordFile = /p\ntokenCommand = t\n",
	  "[box] give only one of passwordFile, passwordCommand and "
	  "tokenCommand" },
	{ "[box]\nfetch = pop3s://a@b\ndeliver = maildir:/m\n"
	  "passwordFile = /p\naccept = 127.0.0.1:1\n",
	  "test.conf:5: error: [box] accept: not an option of a fetch service "
	  "(this section has 'fetch =')" },
	{ "[t]\nclient = yes\naccept = 127.0.0.1:1\nconnect = h:1\n"
	  "deliver = maildir:/m\n",
	  "test.conf:5: error: [t] deliver: only fetch services take this "
	  "option (add 'fetch = URL' to make [t] one)" },
	{ "[box]\nfetch = pop3s://a@b\ndeliver = maildir:/m\n"
	  "passwordFile = /p\ndelete = no\nkeep = 7d\n",
	  "test.conf:6: error: [box] keep deletes messages after a while, but "
	  "delete = no says never" },
	{ "[box]\nfetch = pop3s://a@b\ndeliver = maildir:/m\n"
	  "passwordFile = /p\nfolder = Sent\n",
	  "test.conf:5: error: [box] folder: POP3 has a single mailbox" },
	{ "[box]\nfetch = ftp://a@b\n", "test.conf:2: error: [box] fetch: " },
	{ "[box]\ndeliver = /var/mail/x\n", "[box] deliver: '/var/mail/x' "
	  "is not a delivery target; write maildir:DIR, dir:DIR, mbox:FILE, "
	  "mda:COMMAND, smtp://HOST[:PORT] (or smtps://, smtp+starttls://), "
	  "lmtp:/SOCKET or lmtp://HOST" },
	{ "[box]\nmaxSize = big\n", "[box] maxSize: expected a size such as "
	  "10M, 512k or a number of bytes (0: any size), not 'big'" },
	{ "[box]\nkeep = a while\n", "[box] keep: expected forever or how "
	  "long after delivery a message is deleted on the server" },
	{ "[box]\nfirstRun = later\n", "[box] firstRun: expected all (fetch "
	  "what is there) or new (only what arrives from now on), not 'later'" },
	{ "[box]\nauth = CRAM-MD5\n", "[box] auth: expected PLAIN, LOGIN, "
	  "XOAUTH2 or OAUTHBEARER, not 'CRAM-MD5'" },
	{ "[box]\ninterval = 1s\n", "[box] interval: expected seconds or a "
	  "duration such as 30s, 5m, 2h, 1d, from 10s to 30d, not '1s'" },
};

static void
test_fetch_bad(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(fetch_bad) / sizeof(fetch_bad[0]); i++) {
		if (load(fetch_bad[i].text) != NULL)
			fail_msg("case %zu loaded:\n%s", i, fetch_bad[i].text);
		if (strstr(problems, fetch_bad[i].problem) == NULL)
			fail_msg("case %zu: expected '%s' in:\n%s", i,
			    fetch_bad[i].problem, problems);
	}
}

static void
test_fetch_dump_round_trip(void **state)
{
	static char first[8192], second[8192];

	(void)state;
	dump_of("[box]\nfetch = imaps://alice@imap.example.org\n"
	    "deliver = mbox:/var/mail/alice\ntokenCommand = oauth2 token\n"
	    "folder = INBOX\nfolder = Lists/dev\nkeep = 2w\ninterval = 90s\n"
	    "maxSize = 1536k\nfirstRun = new\ndelete = yes\n", first,
	    sizeof(first));
	assert_non_null(strstr(first, "keep = 2w\n"));
	assert_non_null(strstr(first, "maxSize = 1536k\n"));
	assert_null(strstr(first, "accept"));
	assert_null(strstr(first, "TIMEOUTidle"));
	dump_of(first, second, sizeof(second));
	assert_string_equal(strchr(first, '\n'), strchr(second, '\n'));
}

static int
teardown(void **state)
{
	(void)state;
	mt_config_report_free(&report);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_user_config),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_empty_value_unsets),
		cmocka_unit_test(test_inheritance),
		cmocka_unit_test(test_service_debug),
		cmocka_unit_test(test_unsupported_default_values),
		cmocka_unit_test(test_connect_failover),
		cmocka_unit_test(test_accept_forms),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_all_problems_reported),
		cmocka_unit_test(test_legacy_verify),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_no_services),
		cmocka_unit_test(test_include),
		cmocka_unit_test(test_protocol_stunnel_names),
		cmocka_unit_test(test_protocol),
		cmocka_unit_test(test_dump_round_trip),
		cmocka_unit_test(test_fetch_service),
		cmocka_unit_test(test_fetch_bad),
		cmocka_unit_test(test_fetch_dump_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, teardown);
}
