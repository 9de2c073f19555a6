/*
 * starttls: the plaintext opening of POP3 (STLS), IMAP (STARTTLS) and SMTP
 * (EHLO, STARTTLS), up to the moment TLS must start. A pure state machine:
 * no sockets, no event loop, no clock, no logging. The tunnel and the
 * fetcher drive the same machine.
 *
 * Driving it. Feed each batch of bytes read from the server in one call to
 * mt_starttls_feed(), in order. After each call, send what
 * mt_starttls_output() holds (a command) before reading again: the
 * machine takes a reply that arrives in the same batch as the reply it
 * answered as the server speaking out of turn, which is what a pre-sent
 * ("injected") answer looks like. The result of each call:
 *
 *   MT_STARTTLS_NEED_MORE  read more (after sending the output, if any);
 *   MT_STARTTLS_READY      the last line consumed accepted STARTTLS and
 *                          nothing followed it: start the TLS handshake
 *                          now. Every byte the server sends from here to
 *                          its first TLS record is plaintext injection;
 *                          the caller must check the socket and the
 *                          handshake's first bytes itself.
 *   MT_STARTTLS_FAILED     give up on this server: mt_starttls_reason()
 *                          says why, for the log; mt_starttls_client_line()
 *                          gives the line for a waiting plaintext client.
 *
 * Nothing falls back to plaintext: a missing STLS/STARTTLS, any reply other
 * than the one accepting it, an IMAP PREAUTH greeting, a line longer than
 * MT_STARTTLS_MAX_LINE, more than MT_STARTTLS_MAX_PRELUDE bytes in all, or
 * any byte after the accepting line is FAILED. Untagged IMAP responses
 * are read and dropped (a BYE ends the dialogue). POP3 asks CAPA before
 * STLS; IMAP uses the CAPABILITY code of the greeting, or asks CAPABILITY
 * when the greeting has none; SMTP sends EHLO and looks for STARTTLS.
 *
 * After TLS (every protocol forgets what it learnt in plaintext, RFC 2595,
 * 3501, 3207): in MT_STARTTLS_FOR_CLIENT mode, mt_starttls_replay() is what
 * a bridged client must read first: the server's greeting for POP3 and
 * SMTP (the client sends its own EHLO over TLS and then sees AUTH), and a
 * composed "* OK" greeting for IMAP (the client asks CAPABILITY over TLS).
 * In MT_STARTTLS_FOR_SELF mode (the fetcher) there is nothing to replay;
 * the caller sends CAPA, CAPABILITY or EHLO itself once TLS is up.
 *
 * Ownership: mt_starttls_new() copies what it needs from its options; the
 * caller frees the machine with mt_starttls_free(). Pointers returned by
 * the accessors stay valid until the next feed or the free. The machine
 * holds at most about 17 KiB, whatever the server sends.
 */
#ifndef MAILTUNNEL_STARTTLS_H
#define MAILTUNNEL_STARTTLS_H

#include <stddef.h>
#include <sys/socket.h>

#include "mailtunnel/config.h"

/* Longest line before TLS, without its line end. */
#define MT_STARTTLS_MAX_LINE 8192
/* Most bytes a server may send before TLS (literals included). */
#define MT_STARTTLS_MAX_PRELUDE 65536

enum mt_starttls_mode {
	MT_STARTTLS_FOR_CLIENT,		/* the tunnel: keep a replay */
	MT_STARTTLS_FOR_SELF,		/* the fetcher: nothing to replay */
};

enum mt_starttls_status {
	MT_STARTTLS_NEED_MORE,
	MT_STARTTLS_READY,
	MT_STARTTLS_FAILED,
};

/*
 * Why a server was given up; picks the client's line. The first group
 * comes from the machine, the rest from the caller (timeouts, TLS, DNS).
 */
enum mt_starttls_error {
	MT_STARTTLS_E_NONE = 0,
	MT_STARTTLS_E_SESSION,		/* the greeting refused us */
	MT_STARTTLS_E_NOT_OFFERED,	/* no STLS/STARTTLS capability */
	MT_STARTTLS_E_REFUSED,		/* STARTTLS answered with an error */
	MT_STARTTLS_E_PREAUTH,		/* IMAP PREAUTH: TLS impossible */
	MT_STARTTLS_E_PROTOCOL,		/* malformed, too long, out of turn */
	MT_STARTTLS_E_INJECTION,	/* bytes after accepting STARTTLS */
	MT_STARTTLS_E_CLOSED,		/* the server hung up */
	MT_STARTTLS_E_TIMEOUT,		/* caller: no answer in time */
	MT_STARTTLS_E_TLS,		/* caller: handshake or verification */
	MT_STARTTLS_E_UNREACHABLE,	/* caller: no server could be reached */
};

struct mt_starttls_opts {
	enum mt_protocol proto;		/* not MT_PROTO_NONE */
	enum mt_starttls_mode mode;
	/* SMTP: the EHLO name, valid per mt_config_ehlo_name_valid(). */
	const char *ehlo_name;
};

struct mt_starttls;

/* NULL when memory runs out or the options are unusable. */
struct mt_starttls *mt_starttls_new(const struct mt_starttls_opts *opts);
void mt_starttls_free(struct mt_starttls *st);

/*
 * Feed one batch of server bytes. *consumed is how many were used; on
 * NEED_MORE that is all of them (a partial line is kept inside). Once
 * READY or FAILED, further calls consume nothing and repeat the status.
 */
enum mt_starttls_status mt_starttls_feed(struct mt_starttls *st,
    const void *data, size_t len, size_t *consumed);

/* The server closed its side: FAILED (unless READY already). */
enum mt_starttls_status mt_starttls_eof(struct mt_starttls *st);

/* The command to send after the last feed; *len 0 when there is none. */
const char *mt_starttls_output(const struct mt_starttls *st, size_t *len);

enum mt_starttls_status mt_starttls_status(const struct mt_starttls *st);
enum mt_starttls_error mt_starttls_error(const struct mt_starttls *st);
/* After FAILED: one phrase for a log line (server text sanitized). */
const char *mt_starttls_reason(const struct mt_starttls *st);
/* "the greeting", "the STLS reply"...: for timeout messages. */
const char *mt_starttls_waiting_for(const struct mt_starttls *st);
/* "STLS" for POP3, else "STARTTLS". */
const char *mt_starttls_command_name(enum mt_protocol proto);

/* After READY, FOR_CLIENT: the bytes to give the client first (CRLF). */
const char *mt_starttls_replay(const struct mt_starttls *st, size_t *len);
/* The server's greeting as received (lines end in CRLF); *len may be 0. */
const char *mt_starttls_greeting(const struct mt_starttls *st, size_t *len);

/*
 * The log phrase for plaintext found after READY, the same the machine
 * uses for bytes in the accepting line's read: "plaintext injection: the
 * server sent [at least] N bytes after accepting STLS, before [during] the
 * TLS handshake ('...')", with the start of data shown sanitized. flags:
 * MT_STARTTLS_INJ_MORE (there may be more than n bytes),
 * MT_STARTTLS_INJ_DURING (they came after the server's first TLS record).
 * Always NUL-terminates buf; returns buf.
 */
#define MT_STARTTLS_INJ_MORE 1
#define MT_STARTTLS_INJ_DURING 2
char *mt_starttls_injection_phrase(enum mt_protocol proto, const void *data,
    size_t n, unsigned flags, char *buf, size_t len);

/*
 * The short, protocol-correct line (CRLF included) for a plaintext client
 * when the server is given up: "-ERR ...", "* BYE ...", "421 ...". A
 * static string; MT_STARTTLS_E_NONE gives the generic one.
 */
const char *mt_starttls_client_line(enum mt_protocol proto,
    enum mt_starttls_error error);

/*
 * The EHLO name when protocolHost is not set: hostname (from gethostname)
 * when it is fully qualified (has a dot) and valid; else the address
 * literal of local, the local end of the server connection ("[192.0.2.1]",
 * "[IPv6:2001:db8::1]"), as RFC 5321 section 4.1.4 asks of a client without
 * a meaningful name; else "localhost". Never empty. Returns buf.
 */
char *mt_starttls_default_ehlo(const char *hostname,
    const struct sockaddr *local, socklen_t locallen, char *buf, size_t n);

#endif
