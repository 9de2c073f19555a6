/*
 * stream: one non-blocking socket, plaintext or TLS, watched by a single
 * edge-triggered libevent event that is registered once and never changed.
 *
 * Reads and writes go straight to the socket (or SSL) when the caller asks,
 * so data moves in the same loop turn that it arrives, and the stream
 * remembers what the kernel last said (can_read, can_write) so that no
 * syscall is made only to learn EAGAIN. A TLS stream reads ahead through a
 * BIO of its own that notices a short read, which means the socket is
 * drained.
 *
 * The owner embeds the struct, calls mt_stream_init(), and frees with
 * mt_stream_close(), which closes the fd and frees the SSL. The callback
 * runs on every readiness edge after the flags are updated.
 */
#ifndef MAILTUNNEL_STREAM_H
#define MAILTUNNEL_STREAM_H

#include <stddef.h>
#include <sys/types.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/ssl.h>

struct evbuffer;

struct mt_stream {
	int fd;
	SSL *ssl;			/* NULL: plaintext */
	struct event ev;
	unsigned can_read : 1;		/* no EAGAIN since the last edge */
	unsigned can_write : 1;
	unsigned read_wants_write : 1;	/* TLS: SSL_read needs writability */
	unsigned write_wants_read : 1;	/* TLS: SSL_write needs readability */
	unsigned drained : 1;		/* TLS BIO: last raw read was short */
	unsigned added : 1;		/* ev is registered */
	unsigned at_eof : 1;		/* the socket said EOF */
	unsigned rdhup : 1;		/* the peer shut down: read to the end */
	unsigned eof_pending : 1;	/* EOF seen after data: report next */
	int ssl_error;			/* last SSL_get_error() of a failure */
	int sys_errno;			/* errno of the last failure */
	char *why;			/* TLS failure in words (allocated) */
	event_callback_fn cb;
	void *arg;
};

/*
 * Watch fd (and take ownership of it and of ssl, which may be NULL). The
 * SSL gets the stream's own BIO on fd. cb(fd, what, arg) is called on
 * every edge. 0 or -1 (nothing is taken over on failure).
 */
int mt_stream_init(struct mt_stream *s, struct event_base *base, int fd,
    SSL *ssl, event_callback_fn cb, void *arg);
/* Add TLS to a plaintext stream that is already watched (STARTTLS). */
int mt_stream_set_ssl(struct mt_stream *s, SSL *ssl);
/* Stop watching, free the SSL, close the fd. Safe to call twice. */
void mt_stream_close(struct mt_stream *s);
/* Stop watching and forget the fd without closing it (it was handed on). */
void mt_stream_release(struct mt_stream *s);

/* Whether a read or a write could make progress now. */
int mt_stream_readable(const struct mt_stream *s);
int mt_stream_writable(const struct mt_stream *s);

enum {
	MT_STREAM_AGAIN = 0,		/* nothing now; wait for an edge */
	MT_STREAM_EOF = -1,		/* the peer finished sending */
	MT_STREAM_ERROR = -2,		/* see ssl_error / sys_errno */
};

/* Append up to max bytes to buf: bytes read, or one of the above. */
ssize_t mt_stream_read(struct mt_stream *s, struct evbuffer *buf, size_t max);
/*
 * After a read that found nothing, an empty buffer still holds the space
 * reserved for it (libevent keeps it, and evbuffer_drain() does not give
 * it back): replace an empty buffer by a new one so an idle connection
 * holds no buffer memory. 0, or -1 when memory ran out (buf unchanged).
 */
int mt_stream_buffer_release(struct evbuffer **buf);

/* Write from the front of buf, draining what went out: bytes, AGAIN, ERROR. */
ssize_t mt_stream_write(struct mt_stream *s, struct evbuffer *buf);

/* Drive the TLS client handshake: 1 done, 0 in progress, -1 failed. */
int mt_stream_handshake(struct mt_stream *s);

/*
 * No more data from us: TLS close_notify (best effort) and a TCP FIN. The
 * stream can still be read.
 */
void mt_stream_shutdown_write(struct mt_stream *s);

/* Why the last ERROR happened, in words (valid until the next call). */
const char *mt_stream_why(const struct mt_stream *s);

/* Whether the peer's close_notify was seen (else the EOF was bare). */
int mt_stream_clean_eof(const struct mt_stream *s);

#endif
