/*
 * pop3_client: reading POP3 replies in order, and logging in. See
 * pop3_client.h; the session after the login is in pop3_session.c.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>

#include "fetch/pop3_client.h"
#include "mailtunnel/sasl.h"

static const char *const cmd_names[] = {
	"the greeting", "CAPA", "AUTH", "AUTH", "AUTH", "USER", "PASS",
	"UIDL", "LIST", "RETR", "DELE", "QUIT",
};

void
p3_push(struct mt_fetch *j, enum p3_cmd cmd, uint32_t idx)
{
	struct p3 *p = p3_of(j);
	struct p3_out *o;

	/* Callers keep well below the queue size; this is a safety net. */
	if (p->qn == P3_QUEUE) {
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 0, "too many POP3 commands "
		    "outstanding");
		return;
	}
	o = &p->q[(p->qhead + p->qn++) % P3_QUEUE];
	o->cmd = (uint8_t)cmd;
	o->idx = idx;
}

static void
pop(struct p3 *p)
{
	p->qhead = (p->qhead + 1) % P3_QUEUE;
	p->qn--;
	p->in_body = 0;
}

enum mt_fetch_status
p3_failure(const struct mt_pop3_status_line *st,
    enum mt_fetch_status fallback)
{
	switch (mt_pop3_code_failure(st->code)) {
	case MT_POP3_FAIL_TEMP:
		return MT_FETCH_TEMPFAIL;
	case MT_POP3_FAIL_AUTH:
		return MT_FETCH_AUTH;
	case MT_POP3_FAIL_PERM:
		return MT_FETCH_CONFIG;
	default:
		return fallback;
	}
}

/* ---- logging in ---- */

static void
start_auth(struct mt_fetch *j)
{
	struct p3 *p = p3_of(j);
	unsigned offered = 0;
	int can_login = 1;
	char *ir, line[300];
	const char *why;

	if (p->capa_known) {
		offered = (p->capa.flags & MT_POP3_CAPA_SASL) ? p->capa.sasl : 0;
		can_login = (p->capa.flags & MT_POP3_CAPA_USER) || offered == 0;
	}
	if (ft_choose_auth(j, offered, can_login, &p->mech) == -1)
		return;
	if (p->mech == FT_AUTH_LOGIN) {
		ft_send(j, "USER %s", j->c.user);
		p3_push(j, P3_C_USER, 0);
		return;
	}
	if (p->mech == MT_SASL_PLAIN) {
		if ((ir = mt_sasl_plain(j->c.user, j->secret, &why)) == NULL) {
			ft_job_fail(j, MT_FETCH_CONFIG, 0, "cannot log in: %s",
			    why);
			return;
		}
		/* RFC 5034: the initial response only if the line fits. */
		if (strlen(ir) + 11 <= 255) {
			snprintf(line, sizeof(line), "AUTH PLAIN %s", ir);
			ft_send_secret(j, "AUTH PLAIN <redacted>", line);
			mt_sasl_free(ir);
			OPENSSL_cleanse(line, sizeof(line));
			p3_push(j, P3_C_AUTH_DATA, 0);
			return;
		}
		mt_sasl_free(ir);
	}
	ft_send(j, "AUTH %s", mt_sasl_mech_name(p->mech));
	p3_push(j, P3_C_AUTH, 0);
}

/* "+ " after AUTH MECH: send the credentials. */
static void
auth_continue(struct mt_fetch *j)
{
	struct p3 *p = p3_of(j);
	const char *why;
	char *ir;

	if (p->mech == MT_SASL_PLAIN)
		ir = mt_sasl_plain(j->c.user, j->secret, &why);
	else if (p->mech == MT_SASL_XOAUTH2)
		ir = mt_sasl_xoauth2(j->c.user, j->secret, &why);
	else
		ir = mt_sasl_oauthbearer(j->c.user, j->c.host, j->c.port,
		    j->secret, &why);
	if (ir == NULL) {
		ft_job_fail(j, MT_FETCH_CONFIG, 0, "cannot log in: %s", why);
		return;
	}
	ft_send_secret(j, "<redacted>", ir);
	mt_sasl_free(ir);
	p3_push(j, P3_C_AUTH_DATA, 0);
}

/* "+ " after the credentials: an OAuth error; answer, then -ERR comes. */
static void
oauth_error(struct mt_fetch *j, const struct mt_pop3_status_line *st)
{
	struct p3 *p = p3_of(j);
	struct mt_sasl_oauth_error e;
	const char *why;

	if (mt_sasl_oauth_error_parse(st->text, st->text_len, &e, &why) == 0 &&
	    e.status[0] != '\0')
		snprintf(p->oauth_error, sizeof(p->oauth_error),
		    " (token status: %s)", e.status);
	ft_send_secret(j, "<redacted>", p->mech == MT_SASL_OAUTHBEARER ?
	    MT_SASL_OAUTHBEARER_ABORT : "");
	p3_push(j, P3_C_AUTH_ABORT, 0);
}

static void
login_refused(struct mt_fetch *j, const struct mt_pop3_status_line *st)
{
	char text[256], code[40] = "";

	if (st->code_len > 0)
		snprintf(code, sizeof(code), "[%.*s] ", (int)(st->code_len < 30 ?
		    st->code_len : 30), st->code_text);
	ft_job_fail(j, p3_failure(st, MT_FETCH_AUTH), 0, "%s refused the "
	    "login of %s: %s%s%s", j->c.host, j->c.user, code,
	    ft_printable(st->text, st->text_len, text, sizeof(text)),
	    p3_of(j)->oauth_error);
}

static void
send_pass(struct mt_fetch *j)
{
	size_t n = strlen(j->secret) + 6;
	char *line = malloc(n);

	if (line == NULL) {
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 0, "out of memory");
		return;
	}
	snprintf(line, n, "PASS %s", j->secret);
	ft_send_secret(j, "PASS <redacted>", line);
	OPENSSL_cleanse(line, n);
	free(line);
	p3_push(j, P3_C_PASS, 0);
}

static void
logged_in(struct mt_fetch *j)
{
	mt_log_c(&j->log, MT_LOG_INFO, "logged in to %s as %s", j->c.host,
	    j->c.user);
	ft_job_step(j);
}

void
p3_login_reply(struct mt_fetch *j, enum p3_cmd cmd,
    const struct mt_pop3_status_line *st, const char *line, size_t len)
{
	struct p3 *p = p3_of(j);
	char text[256];
	int ok = st->status == MT_POP3_OK, cont = st->status == MT_POP3_CONT;

	switch (cmd) {
	case P3_C_GREETING:
		if (!ok) {
			ft_job_fail(j, MT_FETCH_TEMPFAIL, 0, "%s refused the "
			    "session: %s", j->c.host,
			    ft_printable(line, len, text, sizeof(text)));
			return;
		}
		ft_send(j, "CAPA");
		p3_push(j, P3_C_CAPA, 0);
		return;
	case P3_C_CAPA:
		/* +OK: the list follows; -ERR: no CAPA, guess. */
		if (!ok)
			start_auth(j);
		return;
	case P3_C_USER:
		if (!ok) {
			login_refused(j, st);
			return;
		}
		send_pass(j);
		return;
	case P3_C_AUTH:
		if (cont) {
			auth_continue(j);
			return;
		}
		break;
	case P3_C_AUTH_DATA:
		if (cont && p->mech != MT_SASL_PLAIN) {
			oauth_error(j, st);
			return;
		}
		break;
	default:
		break;
	}
	if (cont) {
		/* An unexpected challenge: cancel (RFC 5034). */
		ft_send(j, "*");
		p3_push(j, P3_C_AUTH_ABORT, 0);
		return;
	}
	if (ok)
		logged_in(j);
	else
		login_refused(j, st);
}

/* ---- reading replies ---- */

/* A status line: which command it answers, and what to do. */
static int
status_line(struct mt_fetch *j, const char *line, size_t len)
{
	struct p3 *p = p3_of(j);
	struct mt_pop3_status_line st;
	struct p3_out o = p->q[p->qhead];
	const char *why;
	char text[256];

	if (mt_pop3_status_parse(line, len, &st, &why) == -1 ||
	    (st.status == MT_POP3_CONT && o.cmd != P3_C_AUTH &&
	    o.cmd != P3_C_AUTH_DATA && o.cmd != P3_C_PASS)) {
		ft_job_fail(j, MT_FETCH_PROTOCOL, 0, "malformed reply to %s from "
		    "%s: %s ('%s')", cmd_names[o.cmd], j->c.host,
		    why != NULL ? why : "a continuation", ft_printable(line, len,
		    text, sizeof(text)));
		return -1;
	}
	if (mt_log_enabled_c(&j->log, MT_LOG_DEBUG))
		mt_log_c(&j->log, MT_LOG_DEBUG, "S: %s", ft_printable(line, len,
		    text, sizeof(text)));
	if (st.status == MT_POP3_OK && (o.cmd == P3_C_CAPA ||
	    o.cmd == P3_C_UIDL || o.cmd == P3_C_LIST || o.cmd == P3_C_RETR))
		p->in_body = 1;
	else
		pop(p);
	if (o.cmd <= P3_C_PASS)
		p3_login_reply(j, o.cmd, &st, line, len);
	else if (p3_session_reply(j, &o, &st, line, len) == -1)
		return -1;
	return 0;
}

/* One line of a CAPA, UIDL or LIST list; the "." line ends it. */
static int
list_line(struct mt_fetch *j, const char *line, size_t len)
{
	struct p3 *p = p3_of(j);
	enum p3_cmd cmd = p->q[p->qhead].cmd;
	const char *why;

	if (len == 1 && line[0] == '.') {
		pop(p);
		if (cmd == P3_C_CAPA) {
			p->capa_known = 1;
			start_auth(j);
		} else {
			p3_listing_end(j, cmd);
		}
		return 0;
	}
	if (len > 0 && line[0] == '.') {
		line++;
		len--;
	}
	if (cmd == P3_C_CAPA) {
		/* Unknown or malformed capabilities are only ignored. */
		(void)mt_pop3_capa_line(&p->capa, line, len, &why);
		return 0;
	}
	return p3_listing_line(j, cmd, line, len);
}

static void
p3_data(struct mt_fetch *j)
{
	struct p3 *p = p3_of(j);
	struct p3_out o;
	const char *line;
	size_t len, used;
	int r;

	while (!j->ending && !j->conn.paused && p->qn > 0) {
		if (p->in_body && p->q[p->qhead].cmd == P3_C_RETR) {
			if ((r = p3_retr_body(j)) <= 0)
				return;
			o = p->q[p->qhead];
			pop(p);
			p3_retr_ended(j, &o);
			continue;
		}
		if ((r = ft_line(j, P3_LINE_MAX, &line, &len, &used)) <= 0)
			return;
		r = p->in_body ? list_line(j, line, len) :
		    status_line(j, line, len);
		if (j->conn.in != NULL)
			evbuffer_drain(j->conn.in, used);
		if (r == -1)
			return;
	}
	if (p->qn == 0 && evbuffer_get_length(j->conn.in) > 0 && !j->ending &&
	    !p->quitting)
		ft_job_fail(j, MT_FETCH_PROTOCOL, 0, "%s sent a reply to no "
		    "command", j->c.host);
}

static void
p3_opened(struct mt_fetch *j)
{
	/* After STLS the greeting was read in plaintext: ask again (RFC
	 * 2595 says to forget what was learnt before TLS). */
	if (j->conn.via_starttls) {
		ft_send(j, "CAPA");
		p3_push(j, P3_C_CAPA, 0);
		return;
	}
	p3_push(j, P3_C_GREETING, 0);
}

static int
p3_init(struct mt_fetch *j)
{
	struct p3 *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return -1;
	mt_pop3_capa_init(&p->capa);
	j->ps = p;
	return 0;
}

static void
p3_free(struct mt_fetch *j)
{
	free(j->ps);
	j->ps = NULL;
}

const struct ft_proto ft_pop3_proto = {
	.name = "POP3",
	.init = p3_init,
	.free = p3_free,
	.opened = p3_opened,
	.data = p3_data,
	.select = NULL,
	.list = p3_list,
	.details = NULL,
	.fetch = p3_fetch,
	.remove = p3_remove,
	.logout = p3_logout,
};
