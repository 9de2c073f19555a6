/*
 * tunnel_starttls: the plaintext dialogue of a protocol = pop3|imap|smtp
 * service, between the TCP connect and the TLS handshake, and the watch
 * for plaintext the server sends after it has accepted STARTTLS.
 *
 * The state machine (starttls.c) decides; this file moves bytes:
 *
 * - The server stream reads plaintext until the switch, and each read is
 *   fed to the machine as one batch. The command it answers is written at
 *   once with send(), not queued, so the server's next reply can only be
 *   read after the command has left: bytes that arrive with the reply
 *   they follow are then certainly out of turn.
 * - Deadline: the TIMEOUTconnect timer that started with the TCP connect
 *   runs on through the dialogue and the handshake, so a server gets one
 *   TIMEOUTconnect per address for all of it (TIMEOUTbusy, 5 minutes by
 *   default, would keep a client waiting on a stalled server that long).
 * - At the switch, and during the handshake, the checks for plaintext
 *   injection are those of starttls_watch.c (shared with the fetcher):
 *   the socket is peeked at the switch, and the record headers the server
 *   sends are walked until the handshake is done, so the log says
 *   "plaintext injection" rather than the "wrong version number" OpenSSL
 *   would report. (After a TLS 1.3 handshake completes, the client has
 *   read the server's whole first flight; later garbage is a TLS error on
 *   an open tunnel, and never reaches the client either.)
 * - Client bytes wait in the tunnel's up buffer (capped at
 *   MT_TUNNEL_EARLY_MAX) until mt_tunnel_open(), which runs only after the
 *   handshake and its verification; there the replayed greeting is
 *   queued for the client first.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/util.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>

#include "tunnel_int.h"

/* The largest read fed to the machine at once. */
#define PRELUDE_READ 16384

static void fail(struct mt_tunnel *t, enum mt_starttls_error e,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * One line at err, then the next server: a refusal of STARTTLS is the
 * same on every address of the name (next target); a session refused, a
 * hang-up or a timeout may be one machine's trouble (next address).
 */
static void
fail(struct mt_tunnel *t, enum mt_starttls_error e, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	mt_log_c(&t->log, MT_LOG_ERR, "STARTTLS with %s [%s] failed: %s",
	    mt_tunnel_target(t)->name, t->server_addr, why);
	t->fail = e;
	mt_tunnel_server_failed(t, e != MT_STARTTLS_E_SESSION &&
	    e != MT_STARTTLS_E_CLOSED && e != MT_STARTTLS_E_TIMEOUT);
}

static const char *
ehlo_name(struct mt_tunnel *t, char *buf, size_t n)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[256];

	if (t->svc->conf->protocol_host != NULL)
		return t->svc->conf->protocol_host;
	if (gethostname(host, sizeof(host)) == -1)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	if (getsockname(t->server.fd, (struct sockaddr *)&ss, &len) == -1)
		len = 0;
	return mt_starttls_default_ehlo(host, len > 0 ?
	    (struct sockaddr *)&ss : NULL, len, buf, n);
}

/*
 * Write a command now; a short write means a broken connection. -1 when
 * this server was given up (t may be gone: touch nothing).
 */
static int
send_command(struct mt_tunnel *t, const char *cmd, size_t len)
{
	ssize_t n = send(t->server.fd, cmd, len, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n != (ssize_t)len) {
		fail(t, MT_STARTTLS_E_CLOSED, "cannot send %.*s: %s",
		    (int)len - 2, cmd, n < 0 ? strerror(errno) :
		    "the socket took only part of it");
		return -1;
	}
	mt_log_c(&t->log, MT_LOG_DEBUG, "STARTTLS dialogue: sent %.*s",
	    (int)len - 2, cmd);
	return 0;
}

/* The server accepted STARTTLS: check for stray bytes, then start TLS. */
static void
switch_to_tls(struct mt_tunnel *t)
{
	enum mt_protocol proto = t->svc->conf->protocol;
	const char *replay;
	char why[256];
	size_t len;
	int closed;

	if (mt_starttls_switch_check(t->server.fd, proto,
	    evbuffer_get_length(t->prelude), &closed, why, sizeof(why)) == -1) {
		fail(t, closed ? MT_STARTTLS_E_CLOSED : MT_STARTTLS_E_INJECTION,
		    "%s", why);
		return;
	}
	replay = mt_starttls_replay(t->st, &len);
	if (len > 0 && (t->replay = malloc(len)) == NULL) {
		mt_log_c(&t->log, MT_LOG_ERR, "out of memory");
		mt_tunnel_server_failed(t, 0);
		return;
	}
	memcpy(t->replay, replay, len);
	t->replay_len = len;
	mt_log_c(&t->log, MT_LOG_DEBUG, "%s accepted; starting TLS",
	    mt_starttls_command_name(proto));
	mt_tunnel_starttls_cancel(t);
	mt_tunnel_tls_begin(t);
}

/* Feed one read to the machine and act on its verdict. */
static int
prelude_batch(struct mt_tunnel *t)
{
	size_t len = evbuffer_get_length(t->prelude), used, olen;
	enum mt_starttls_status s;
	const char *out;

	s = mt_starttls_feed(t->st, evbuffer_pullup(t->prelude, -1), len,
	    &used);
	evbuffer_drain(t->prelude, used);
	switch (s) {
	case MT_STARTTLS_FAILED:
		fail(t, mt_starttls_error(t->st), "%s",
		    mt_starttls_reason(t->st));
		return -1;
	case MT_STARTTLS_READY:
		switch_to_tls(t);
		return -1;
	default:
		out = mt_starttls_output(t->st, &olen);
		if (olen > 0 && send_command(t, out, olen) == -1)
			return -1;
		return 0;
	}
}

/* The server socket has news while the dialogue runs. */
void
mt_tunnel_starttls_step(struct mt_tunnel *t)
{
	ssize_t n;

	while (t->state == MT_T_STARTTLS && mt_stream_readable(&t->server)) {
		n = mt_stream_read(&t->server, t->prelude, PRELUDE_READ);
		if (n > 0) {
			if (prelude_batch(t) == -1)
				return;
		} else if (n == MT_STREAM_EOF) {
			mt_starttls_eof(t->st);
			fail(t, mt_starttls_error(t->st), "%s",
			    mt_starttls_reason(t->st));
			return;
		} else if (n == MT_STREAM_ERROR) {
			fail(t, MT_STARTTLS_E_CLOSED, "connection error while "
			    "we waited for %s: %s",
			    mt_starttls_waiting_for(t->st),
			    mt_stream_why(&t->server));
			return;
		} else {
			return;
		}
	}
}

void
mt_tunnel_starttls_begin(struct mt_tunnel *t)
{
	struct mt_starttls_opts o = { t->svc->conf->protocol,
	    MT_STARTTLS_FOR_CLIENT, NULL };
	char ehlo[MT_CONFIG_EHLO_MAX + 1];

	if (o.proto == MT_PROTO_SMTP)
		o.ehlo_name = ehlo_name(t, ehlo, sizeof(ehlo));
	t->st = mt_starttls_new(&o);
	t->prelude = evbuffer_new();
	if (t->st == NULL || t->prelude == NULL) {
		mt_log_c(&t->log, MT_LOG_ERR, "out of memory");
		mt_tunnel_server_failed(t, 0);
		return;
	}
	t->state = MT_T_STARTTLS;
	mt_log_c(&t->log, MT_LOG_DEBUG, "connected to %s [%s]; waiting for "
	    "the greeting", mt_tunnel_target(t)->name, t->server_addr);
	mt_tunnel_starttls_step(t);
}

void
mt_tunnel_starttls_timeout(struct mt_tunnel *t)
{
	fail(t, MT_STARTTLS_E_TIMEOUT, "no reply within %llus "
	    "(TIMEOUTconnect) while we waited for %s",
	    t->svc->conf->timeout_connect, mt_starttls_waiting_for(t->st));
}

void
mt_tunnel_starttls_cancel(struct mt_tunnel *t)
{
	if (t->prelude != NULL) {
		evbuffer_free(t->prelude);
		t->prelude = NULL;
	}
	if (t->st != NULL) {
		mt_starttls_free(t->st);
		t->st = NULL;
	}
}

void
mt_tunnel_starttls_watch(struct mt_tunnel *t)
{
	mt_starttls_watch_begin(&t->watch, t->server.ssl,
	    t->svc->conf->protocol);
}

void
mt_tunnel_starttls_unwatch(struct mt_tunnel *t)
{
	if (t->svc->conf->protocol != MT_PROTO_NONE)
		mt_starttls_watch_end(&t->watch, t->server.ssl);
}
