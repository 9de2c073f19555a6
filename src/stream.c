/*
 * stream: see include/mailtunnel/stream.h.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <openssl/bio.h>
#include <openssl/err.h>

#include "mailtunnel/stream.h"
#include "mailtunnel/tls.h"

/* Small first chunks are merged up to one TLS record before writing. */
#define MT_STREAM_RECORD 16384
/* TLS read-ahead buffer: several records per read(2). */
#define MT_STREAM_READ_AHEAD (4 * (16384 + 256))

/* ---- a socket BIO that remembers whether the socket is drained ---- */

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static int
sbio_write(BIO *b, const char *data, size_t len, size_t *written)
{
	struct mt_stream *s = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	n = send(s->fd, data, len, MSG_NOSIGNAL);
	if (n >= 0) {
		*written = (size_t)n;
		return 1;
	}
	s->sys_errno = errno;
	if (errno == EAGAIN || errno == EINTR)
		BIO_set_retry_write(b);
	return 0;
}

static int
sbio_read(BIO *b, char *data, size_t len, size_t *got)
{
	struct mt_stream *s = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	n = recv(s->fd, data, len, 0);
	if (n > 0) {
		/* A short read emptied the socket: no need to ask again. */
		s->drained = (size_t)n < len;
		*got = (size_t)n;
		return 1;
	}
	s->drained = 1;
	if (n == 0) {
		s->at_eof = 1;
		s->rdhup = 0;
		return 0;
	}
	s->sys_errno = errno;
	if (errno == EAGAIN || errno == EINTR)
		BIO_set_retry_read(b);
	return 0;
}

static long
sbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct mt_stream *s = BIO_get_data(b);

	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_EOF:
		return s->at_eof;
	case BIO_C_GET_FD:
		if (ptr != NULL)
			*(int *)ptr = s->fd;
		return s->fd;
	default:
		return 0;
	}
}

static void
bio_method_make(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
	    "mailtunnel socket");

	if (m == NULL)
		return;
	BIO_meth_set_write_ex(m, sbio_write);
	BIO_meth_set_read_ex(m, sbio_read);
	BIO_meth_set_ctrl(m, sbio_ctrl);
	bio_method = m;
}

/* ---- the stream ---- */

/*
 * Put a TLS failure into words at once: the reason drains this thread's
 * OpenSSL error queue, which must be empty before the next SSL call of
 * any stream on the thread.
 */
static void
tls_failed(struct mt_stream *s, int err)
{
	char why[512];

	s->ssl_error = err;
	s->sys_errno = errno;
	mt_tls_reason(s->ssl, err, why, sizeof(why));
	free(s->why);
	s->why = strdup(why);
}

const char *
mt_stream_why(const struct mt_stream *s)
{
	if (s->why != NULL)
		return s->why;
	return s->sys_errno != 0 ? strerror(s->sys_errno) : "connection closed";
}

static void
stream_event(evutil_socket_t fd, short what, void *arg)
{
	struct mt_stream *s = arg;

	/* New data came in: an earlier short read no longer proves the
	 * socket empty (TLS may have served later reads from its buffer). */
	if (what & EV_READ) {
		s->can_read = 1;
		s->drained = 0;
	}
	if (what & EV_WRITE)
		s->can_write = 1;
	/* A FIN that came with the last data gives no edge of its own. */
	if ((what & EV_CLOSED) && !s->at_eof)
		s->rdhup = 1;
	s->cb(fd, what, s->arg);
}

int
mt_stream_set_ssl(struct mt_stream *s, SSL *ssl)
{
	BIO *b;

	pthread_once(&bio_once, bio_method_make);
	if (bio_method == NULL || (b = BIO_new(bio_method)) == NULL)
		return -1;
	BIO_set_data(b, s);
	BIO_set_init(b, 1);
	SSL_set_bio(ssl, b, b);
	/* One read(2) takes in whole records, not a header then a body, and
	 * up to four of them at a time. */
	SSL_set_read_ahead(ssl, 1);
	SSL_set_default_read_buffer_len(ssl, MT_STREAM_READ_AHEAD);
	s->ssl = ssl;
	return 0;
}

int
mt_stream_init(struct mt_stream *s, struct event_base *base, int fd,
    SSL *ssl, event_callback_fn cb, void *arg)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->cb = cb;
	s->arg = arg;
	if (ssl != NULL && mt_stream_set_ssl(s, ssl) == -1)
		goto fail;
	if (event_assign(&s->ev, base, fd, EV_READ | EV_WRITE | EV_CLOSED |
	    EV_ET | EV_PERSIST, stream_event, s) == -1 || event_add(&s->ev, NULL) == -1)
		goto fail;
	s->added = 1;
	return 0;

fail:
	/* The caller keeps fd and ssl; detach the BIO we may have set. */
	if (s->ssl != NULL)
		SSL_set_bio(s->ssl, NULL, NULL);
	s->ssl = NULL;
	s->fd = -1;
	return -1;
}

void
mt_stream_release(struct mt_stream *s)
{
	if (s->added)
		event_del(&s->ev);
	s->added = 0;
	s->fd = -1;
}

void
mt_stream_close(struct mt_stream *s)
{
	int fd = s->fd;

	mt_stream_release(s);
	if (s->ssl != NULL)
		SSL_free(s->ssl);
	s->ssl = NULL;
	free(s->why);
	s->why = NULL;
	if (fd != -1)
		close(fd);
}

int
mt_stream_readable(const struct mt_stream *s)
{
	if (s->eof_pending || s->rdhup)
		return 1;
	if (s->ssl == NULL)
		return s->can_read;
	/* Decrypted bytes waiting; a partial record alone is not enough. */
	if (SSL_pending(s->ssl) > 0)
		return 1;
	if (s->read_wants_write)
		return s->can_write;
	return s->can_read;
}

int
mt_stream_writable(const struct mt_stream *s)
{
	if (s->ssl != NULL && s->write_wants_read)
		return s->can_read;
	return s->can_write;
}

static ssize_t
plain_read(struct mt_stream *s, struct evbuffer *buf, size_t max)
{
	struct evbuffer_iovec v[2];
	size_t want = 0, got, left;
	ssize_t n;
	int nv, i, used;

	if ((nv = evbuffer_reserve_space(buf, (ev_ssize_t)max, v, 2)) < 0)
		return MT_STREAM_ERROR;
	for (i = 0; i < nv; i++) {
		if (want + v[i].iov_len > max)
			v[i].iov_len = max - want;
		want += v[i].iov_len;
	}
	while ((n = readv(s->fd, v, nv)) == -1 && errno == EINTR)
		;
	if (n <= 0) {
		evbuffer_commit_space(buf, NULL, 0);
		if (n == 0) {
			s->at_eof = 1;
			s->rdhup = 0;
			s->can_read = 0;
			return MT_STREAM_EOF;
		}
		s->sys_errno = errno;
		if (errno == EAGAIN) {
			s->can_read = 0;
			return MT_STREAM_AGAIN;
		}
		return MT_STREAM_ERROR;
	}
	got = (size_t)n;
	if (got < want)
		s->can_read = 0;	/* a short read: the socket is empty */
	for (i = 0, used = 0, left = got; i < nv && left > 0; i++, used++) {
		if (v[i].iov_len > left)
			v[i].iov_len = left;
		left -= v[i].iov_len;
	}
	evbuffer_commit_space(buf, v, used);
	return (ssize_t)got;
}

/* What an SSL failure means for a read: EOF (clean or bare) or an error. */
static ssize_t
tls_read_failed(struct mt_stream *s, int ret)
{
	int err = SSL_get_error(s->ssl, ret);
	unsigned long e;

	switch (err) {
	case SSL_ERROR_WANT_READ:
		s->can_read = 0;
		return MT_STREAM_AGAIN;
	case SSL_ERROR_WANT_WRITE:
		s->read_wants_write = 1;
		s->can_write = 0;
		return MT_STREAM_AGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return MT_STREAM_EOF;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0 && s->at_eof)
			return MT_STREAM_EOF;
		break;
	case SSL_ERROR_SSL:
		/* A TCP FIN without close_notify: many mail servers do that
		 * after their goodbye; the caller may ask which it was. */
		e = ERR_peek_error();
		if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
		    ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			ERR_clear_error();
			return MT_STREAM_EOF;
		}
		break;
	}
	tls_failed(s, err);
	return MT_STREAM_ERROR;
}

static ssize_t
tls_read(struct mt_stream *s, struct evbuffer *buf, size_t max)
{
	struct evbuffer_iovec v;
	size_t total = 0, got;
	ssize_t rc = 0;
	int ret;

	if (evbuffer_reserve_space(buf, (ev_ssize_t)max, &v, 1) != 1)
		return MT_STREAM_ERROR;
	if (v.iov_len > max)
		v.iov_len = max;
	s->read_wants_write = 0;
	while (total < v.iov_len) {
		ret = SSL_read_ex(s->ssl, (char *)v.iov_base + total,
		    v.iov_len - total, &got);
		if (ret == 1) {
			total += got;
			if (s->drained && !SSL_has_pending(s->ssl)) {
				s->can_read = 0;
				break;
			}
			continue;
		}
		rc = tls_read_failed(s, ret);
		break;
	}
	v.iov_len = total;
	evbuffer_commit_space(buf, &v, total > 0 ? 1 : 0);
	if (total == 0)
		return rc;
	/* Report the end after the data that came before it. */
	if (rc == MT_STREAM_EOF || rc == MT_STREAM_ERROR)
		s->eof_pending = 1;
	return (ssize_t)total;
}

ssize_t
mt_stream_read(struct mt_stream *s, struct evbuffer *buf, size_t max)
{
	if (s->eof_pending) {
		s->eof_pending = 0;
		return s->ssl_error != 0 ? MT_STREAM_ERROR : MT_STREAM_EOF;
	}
	return s->ssl == NULL ? plain_read(s, buf, max) : tls_read(s, buf, max);
}

int
mt_stream_buffer_release(struct evbuffer **buf)
{
	struct evbuffer *fresh;

	if (evbuffer_get_length(*buf) > 0)
		return 0;
	if ((fresh = evbuffer_new()) == NULL)
		return -1;
	evbuffer_free(*buf);
	*buf = fresh;
	return 0;
}

static ssize_t
plain_write(struct mt_stream *s, struct evbuffer *buf)
{
	size_t len = evbuffer_get_length(buf);
	int n;

	n = evbuffer_write_atmost(buf, s->fd, -1);
	if (n < 0) {
		s->sys_errno = errno;
		if (errno == EAGAIN || errno == EINTR) {
			s->can_write = 0;
			return MT_STREAM_AGAIN;
		}
		return MT_STREAM_ERROR;
	}
	if ((size_t)n < len)
		s->can_write = 0;	/* the socket buffer is full */
	return n;
}

static ssize_t
tls_write(struct mt_stream *s, struct evbuffer *buf)
{
	struct evbuffer_iovec v;
	size_t total = 0, len, written;
	int ret, err;

	s->write_wants_read = 0;
	while ((len = evbuffer_get_length(buf)) > 0) {
		evbuffer_peek(buf, -1, NULL, &v, 1);
		/* Many small pieces would each become a record: merge them. */
		if (v.iov_len < MT_STREAM_RECORD && len > v.iov_len) {
			size_t want = len < MT_STREAM_RECORD ? len :
			    MT_STREAM_RECORD;

			v.iov_base = evbuffer_pullup(buf, (ev_ssize_t)want);
			v.iov_len = want;
		}
		ret = SSL_write_ex(s->ssl, v.iov_base, v.iov_len, &written);
		if (ret == 1) {
			evbuffer_drain(buf, written);
			total += written;
			continue;
		}
		err = SSL_get_error(s->ssl, ret);
		if (err == SSL_ERROR_WANT_WRITE) {
			s->can_write = 0;
			break;
		}
		if (err == SSL_ERROR_WANT_READ) {
			s->write_wants_read = 1;
			s->can_read = 0;
			break;
		}
		tls_failed(s, err);
		return total > 0 ? (ssize_t)total : MT_STREAM_ERROR;
	}
	return (ssize_t)total;
}

ssize_t
mt_stream_write(struct mt_stream *s, struct evbuffer *buf)
{
	return s->ssl == NULL ? plain_write(s, buf) : tls_write(s, buf);
}

int
mt_stream_handshake(struct mt_stream *s)
{
	int ret = SSL_do_handshake(s->ssl), err;

	if (ret == 1) {
		/* Read ahead may have taken in data sent right after the
		 * handshake: no edge will announce it, so look. */
		s->can_read = 1;
		return 1;
	}
	err = SSL_get_error(s->ssl, ret);
	if (err == SSL_ERROR_WANT_READ) {
		s->can_read = 0;
		return 0;
	}
	if (err == SSL_ERROR_WANT_WRITE) {
		s->can_write = 0;
		return 0;
	}
	tls_failed(s, err);
	return -1;
}

void
mt_stream_shutdown_write(struct mt_stream *s)
{
	if (s->ssl != NULL && SSL_shutdown(s->ssl) < 0)
		ERR_clear_error();	/* best effort: the FIN still goes */
	shutdown(s->fd, SHUT_WR);
}

int
mt_stream_clean_eof(const struct mt_stream *s)
{
	return s->ssl == NULL ||
	    (SSL_get_shutdown(s->ssl) & SSL_RECEIVED_SHUTDOWN) != 0;
}
