/*
 * imap_client: reading IMAP responses, and logging in. See imap_client.h;
 * the session after the login is in imap_session.c.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>

#include "fetch/imap_client.h"
#include "fetch/imap_cmd.h"
#include "mailtunnel/sasl.h"

/* Limits for what one response outside a body may hold. */
static const struct mt_imap_limits limits = {
	.line_max = 65536,
	.literal_max = 65536,
	.body_max = 1ULL << 32,
	.depth_max = 16,
};

struct imc_cmd *
imc_send(struct mt_fetch *j, enum imc_kind kind, const char *fmt, ...)
{
	struct imc *p = imc_of(j);
	struct imc_cmd *c;
	char body[4096], tag[16];
	va_list ap;

	if (p->nq == IMC_QUEUE) {
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 0, "too many IMAP commands "
		    "outstanding");
		return NULL;
	}
	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	c = &p->q[p->nq++];
	memset(c, 0, sizeof(*c));
	c->tag = ++p->tagn;
	c->kind = (uint8_t)kind;
	mt_imap_tag_format(tag, sizeof(tag), c->tag);
	ft_queue(j, "%s %s", tag, body);
	return c;
}

enum mt_fetch_status
imc_failure(const struct mt_imap_event *ev, enum mt_fetch_status fallback)
{
	switch (mt_imap_code_failure(ev->code.kind)) {
	case MT_IMAP_FAIL_TEMP:
		return MT_FETCH_TEMPFAIL;
	case MT_IMAP_FAIL_AUTH:
		return MT_FETCH_AUTH;
	case MT_IMAP_FAIL_PERM:
		return MT_FETCH_CONFIG;
	default:
		return fallback;
	}
}

const char *
imc_text(const struct mt_imap_event *ev, char *buf, size_t size)
{
	char text[256];
	const char *code = mt_imap_code_name(ev->code.kind);

	ft_printable(ev->text.p, ev->text.len, text, sizeof(text));
	if (ev->code.kind == MT_IMAP_CODE_NONE)
		snprintf(buf, size, "%s", text);
	else
		snprintf(buf, size, "[%s] %s", ev->code.kind ==
		    MT_IMAP_CODE_OTHER ? "..." : code, text);
	return buf;
}

/* ---- logging in ---- */

static void
take_caps(struct imc *p, const struct mt_imap_caps *caps)
{
	p->caps = caps->flags;
	p->auth = caps->auth;
}

/* Queue "TAG rest" as a line that holds a secret. */
static void
send_secret_cmd(struct mt_fetch *j, const char *shown, const char *rest)
{
	struct imc *p = imc_of(j);
	struct imc_cmd *c;
	size_t n = strlen(rest) + 20;
	char tag[16], *line;

	if (p->nq == IMC_QUEUE || (line = malloc(n)) == NULL) {
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 0, "out of memory");
		return;
	}
	c = &p->q[p->nq++];
	memset(c, 0, sizeof(*c));
	c->tag = ++p->tagn;
	c->kind = IMC_LOGIN;
	mt_imap_tag_format(tag, sizeof(tag), c->tag);
	snprintf(line, n, "%s %s", tag, rest);
	ft_send_secret(j, shown, line);
	OPENSSL_cleanse(line, n);
	free(line);
}

static void
login_cmd(struct mt_fetch *j)
{
	size_t n = 2 * strlen(j->secret) + 3;
	char user[600], *pass, *rest;

	if ((pass = malloc(n)) == NULL || (rest = malloc(n + 620)) == NULL) {
		free(pass);
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 0, "out of memory");
		return;
	}
	if (ft_imap_quote(user, sizeof(user), j->c.user) == -1 ||
	    ft_imap_quote(pass, n, j->secret) == -1) {
		ft_job_fail(j, MT_FETCH_CONFIG, 0, "the user name or password "
		    "has characters that IMAP LOGIN cannot carry; use "
		    ";AUTH=PLAIN");
	} else {
		snprintf(rest, n + 620, "LOGIN %s %s", user, pass);
		send_secret_cmd(j, "LOGIN <redacted>", rest);
	}
	OPENSSL_cleanse(pass, n);
	OPENSSL_cleanse(rest, n + 620);
	free(pass);
	free(rest);
}

/* The SASL response for p->mech; NULL when it cannot be built (failed). */
static char *
sasl_response(struct mt_fetch *j)
{
	struct imc *p = imc_of(j);
	const char *why;
	char *ir;

	if (p->mech == MT_SASL_PLAIN)
		ir = mt_sasl_plain(j->c.user, j->secret, &why);
	else if (p->mech == MT_SASL_XOAUTH2)
		ir = mt_sasl_xoauth2(j->c.user, j->secret, &why);
	else
		ir = mt_sasl_oauthbearer(j->c.user, j->c.host, j->c.port,
		    j->secret, &why);
	if (ir == NULL)
		ft_job_fail(j, MT_FETCH_CONFIG, 0, "cannot log in: %s", why);
	return ir;
}

static void
authenticate(struct mt_fetch *j)
{
	struct imc *p = imc_of(j);
	const char *mech = mt_sasl_mech_name(p->mech);
	char *ir, *rest;
	size_t n;

	if (!(p->caps & MT_IMAP_CAP_SASL_IR)) {
		imc_send(j, IMC_LOGIN, "AUTHENTICATE %s", mech);
		ft_conn_flush(&j->conn);
		return;
	}
	if ((ir = sasl_response(j)) == NULL)
		return;
	n = strlen(ir) + 40;
	if ((rest = malloc(n)) == NULL) {
		mt_sasl_free(ir);
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 0, "out of memory");
		return;
	}
	snprintf(rest, n, "AUTHENTICATE %s %s", mech, ir);
	mt_sasl_free(ir);
	p->creds_sent = 1;
	send_secret_cmd(j, "AUTHENTICATE <redacted>", rest);
	OPENSSL_cleanse(rest, n);
	free(rest);
}

static void
start_auth(struct mt_fetch *j)
{
	struct imc *p = imc_of(j);

	if (p->logged_in) {
		ft_job_step(j);
		return;
	}
	if (ft_choose_auth(j, p->auth, !(p->caps & MT_IMAP_CAP_LOGINDISABLED),
	    &p->mech) == -1)
		return;
	if (p->mech == FT_AUTH_LOGIN)
		login_cmd(j);
	else
		authenticate(j);
}

/* "+ ..." while authenticating. */
static void
continuation(struct mt_fetch *j, const struct mt_imap_event *ev)
{
	struct imc *p = imc_of(j);
	struct mt_sasl_oauth_error e;
	const char *why;
	char *ir;

	if (!p->creds_sent) {
		if ((ir = sasl_response(j)) == NULL)
			return;
		p->creds_sent = 1;
		ft_send_secret(j, "<redacted>", ir);
		mt_sasl_free(ir);
		return;
	}
	/* A challenge after the credentials: an OAuth error (RFC 7628). */
	if (mt_sasl_oauth_error_parse(ev->text.p, ev->text.len, &e, &why) ==
	    0 && e.status[0] != '\0')
		snprintf(p->oauth_error, sizeof(p->oauth_error),
		    " (token status: %s)", e.status);
	ft_send_secret(j, "<redacted>", p->mech == MT_SASL_OAUTHBEARER ?
	    MT_SASL_OAUTHBEARER_ABORT : "");
}

static void
ask_capabilities(struct mt_fetch *j)
{
	imc_send(j, IMC_CAPABILITY, "CAPABILITY");
	ft_conn_flush(&j->conn);
}

static int
greeting(struct mt_fetch *j, const struct mt_imap_event *ev)
{
	struct imc *p = imc_of(j);
	char text[300];

	if (ev->type != MT_IMAP_EV_STATUS || (ev->status != MT_IMAP_OK &&
	    ev->status != MT_IMAP_PREAUTH)) {
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 0, "%s refused the session: "
		    "%s", j->c.host, ev->type == MT_IMAP_EV_STATUS ?
		    imc_text(ev, text, sizeof(text)) : "no greeting");
		return -1;
	}
	p->greeted = 1;
	if (ev->status == MT_IMAP_PREAUTH) {
		mt_log_c(&j->log, MT_LOG_INFO, "%s says we are logged in "
		    "already (PREAUTH)", j->c.host);
		p->logged_in = 1;
	}
	if (ev->code.kind == MT_IMAP_CODE_CAPABILITY) {
		take_caps(p, &ev->code.caps);
		start_auth(j);
	} else {
		ask_capabilities(j);
	}
	return 0;
}

static void
login_done(struct mt_fetch *j, const struct mt_imap_event *ev)
{
	struct imc *p = imc_of(j);
	char text[300];

	if (ev->status != MT_IMAP_OK) {
		ft_job_fail(j, ev->status == MT_IMAP_BAD ? MT_FETCH_CONFIG :
		    imc_failure(ev, MT_FETCH_AUTH), 0, "%s refused the login "
		    "of %s: %s%s", j->c.host, j->c.user, imc_text(ev, text,
		    sizeof(text)), p->oauth_error);
		return;
	}
	mt_log_c(&j->log, MT_LOG_INFO, "logged in to %s as %s", j->c.host,
	    j->c.user);
	p->logged_in = 1;
	if (ev->code.kind == MT_IMAP_CODE_CAPABILITY) {
		take_caps(p, &ev->code.caps);
		ft_job_step(j);
		return;
	}
	/* What the server offers may change after the login. */
	ask_capabilities(j);
}

/* A tagged completion: find its command and hand it on. */
static int
tagged(struct mt_fetch *j, const struct mt_imap_event *ev)
{
	struct imc *p = imc_of(j);
	struct imc_cmd cmd;
	uint32_t n;
	size_t i;
	char text[300];

	for (i = 0; i < p->nq; i++)
		if (mt_imap_tag_parse(ev->tag, &n) == 0 && p->q[i].tag == n)
			break;
	if (i == p->nq) {
		ft_job_fail(j, MT_FETCH_PROTOCOL, 0, "%s completed a command "
		    "that was not sent", j->c.host);
		return -1;
	}
	cmd = p->q[i];
	memmove(&p->q[i], &p->q[i + 1], (p->nq - i - 1) * sizeof(p->q[0]));
	p->nq--;
	if (mt_log_enabled_c(&j->log, MT_LOG_DEBUG))
		mt_log_c(&j->log, MT_LOG_DEBUG, "S: A%u %s %s", cmd.tag,
		    ev->status == MT_IMAP_OK ? "OK" : ev->status == MT_IMAP_NO ?
		    "NO" : "BAD", imc_text(ev, text, sizeof(text)));
	switch (cmd.kind) {
	case IMC_CAPABILITY:
		if (ev->status != MT_IMAP_OK) {
			ft_job_fail(j, MT_FETCH_PROTOCOL, 0, "%s refused "
			    "CAPABILITY: %s", j->c.host, imc_text(ev, text,
			    sizeof(text)));
			return -1;
		}
		start_auth(j);		/* or on, when logged in */
		return 0;
	case IMC_LOGIN:
		login_done(j, ev);
		return 0;
	default:
		return imc_session_done(j, &cmd, ev);
	}
}

static int
event(struct mt_fetch *j, const struct mt_imap_event *ev)
{
	struct imc *p = imc_of(j);
	char text[300];

	if (!p->greeted)
		return greeting(j, ev);
	switch (ev->type) {
	case MT_IMAP_EV_TAGGED:
		return tagged(j, ev);
	case MT_IMAP_EV_CONTINUE:
		if (p->nq > 0 && p->q[p->nq - 1].kind == IMC_LOGIN) {
			continuation(j, ev);
			return 0;
		}
		ft_job_fail(j, MT_FETCH_PROTOCOL, 0, "%s asked for data that "
		    "was not announced", j->c.host);
		return -1;
	case MT_IMAP_EV_CAPABILITY:
		take_caps(p, &ev->caps);
		return 0;
	case MT_IMAP_EV_STATUS:
		if (ev->code.kind == MT_IMAP_CODE_ALERT)
			mt_log_c(&j->log, MT_LOG_WARNING, "%s says: %s",
			    j->c.host, imc_text(ev, text, sizeof(text)));
		if (ev->status == MT_IMAP_BYE && !p->logging_out)
			mt_log_c(&j->log, MT_LOG_WARNING, "%s is closing the "
			    "connection: %s", j->c.host, imc_text(ev, text,
			    sizeof(text)));
		return imc_session_event(j, ev);
	default:
		return imc_session_event(j, ev);
	}
}

static void
imc_data(struct mt_fetch *j)
{
	struct imc *p = imc_of(j);
	const struct mt_imap_event *ev;
	struct evbuffer_iovec v;
	size_t used;
	int r;

	while (!j->ending && !j->conn.paused) {
		if (evbuffer_peek(j->conn.in, -1, NULL, &v, 1) < 1 ||
		    v.iov_len == 0)
			return;
		r = mt_imap_parser_feed(p->parser, v.iov_base, v.iov_len, &used,
		    &ev);
		if (r == -1) {
			ft_job_fail(j, MT_FETCH_PROTOCOL, 0, "malformed "
			    "response from %s: %s", j->c.host,
			    mt_imap_parser_error(p->parser));
			return;
		}
		/* FETCH_DATA points into the input: use it, then drain. */
		if (r == 1 && event(j, ev) == -1)
			return;
		if (j->conn.in != NULL)
			evbuffer_drain(j->conn.in, used);
	}
}

static void
imc_opened(struct mt_fetch *j)
{
	struct imc *p = imc_of(j);

	/* After STARTTLS, forget what was said in plaintext (RFC 3501). */
	if (j->conn.via_starttls) {
		p->greeted = 1;
		ask_capabilities(j);
	}
}

static int
imc_init(struct mt_fetch *j)
{
	struct imc *p = calloc(1, sizeof(*p));

	if (p == NULL || (p->parser = mt_imap_parser_new(&limits)) == NULL) {
		free(p);
		return -1;
	}
	j->ps = p;
	return 0;
}

static void
imc_free(struct mt_fetch *j)
{
	struct imc *p = imc_of(j);

	mt_imap_parser_free(p->parser);
	free(p->again);
	free(p);
	j->ps = NULL;
}

const struct ft_proto ft_imap_proto = {
	.name = "IMAP",
	.init = imc_init,
	.free = imc_free,
	.opened = imc_opened,
	.data = imc_data,
	.select = imc_select,
	.list = imc_list,
	.details = imc_details,
	.fetch = imc_fetch,
	.remove = imc_remove,
	.logout = imc_logout,
};
