/*
 * starttls_watch: see include/mailtunnel/starttls_watch.h. Moved out of
 * the tunnel so that the fetcher's STARTTLS makes the same checks.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/bio.h>

#include "mailtunnel/starttls.h"
#include "mailtunnel/starttls_watch.h"

/* How much of an injection is read for the log. */
#define INJECTION_PEEK 256

int
mt_starttls_switch_check(int fd, enum mt_protocol proto, size_t buffered,
    int *closed, char *why, size_t len)
{
	char peek[INJECTION_PEEK];
	ssize_t n;

	*closed = 0;
	n = recv(fd, peek, sizeof(peek), MSG_PEEK | MSG_DONTWAIT);
	if (buffered > 0 || n > 0) {
		mt_starttls_injection_phrase(proto, peek, n > 0 ? (size_t)n : 0,
		    n == (ssize_t)sizeof(peek) ? MT_STARTTLS_INJ_MORE : 0, why,
		    len);
		return -1;
	}
	if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
		*closed = 1;
		snprintf(why, len, "the connection %s after %s was accepted",
		    n == 0 ? "was closed" : strerror(errno),
		    mt_starttls_command_name(proto));
		return -1;
	}
	return 0;
}

/* Byte w->have of a record header: the type, then version 3.0 to 3.4. */
static int
header_byte_ok(const struct mt_starttls_watch *w, unsigned char c)
{
	switch (w->have) {
	case 1:
		/* The server speaks first with a handshake, or an alert. */
		if (w->seen == 0)
			return c == SSL3_RT_HANDSHAKE || c == SSL3_RT_ALERT;
		return c >= SSL3_RT_CHANGE_CIPHER_SPEC &&
		    c <= SSL3_RT_APPLICATION_DATA;
	case 2:
		return c == 3;
	case 3:
		return c <= 4;
	default:
		return 1;
	}
}

size_t
mt_starttls_watch_scan(struct mt_starttls_watch *w, const unsigned char *p,
    size_t n)
{
	size_t i = 0, k, len;
	unsigned char c;

	while (i < n) {
		if (w->left > 0) {
			k = n - i < w->left ? n - i : w->left;
			w->left -= k;
			i += k;
			continue;
		}
		c = p[i];
		w->hdr[w->have++] = c;
		if (!header_byte_ok(w, c))
			return i;
		i++;
		if (w->have < 5)
			continue;
		len = (size_t)w->hdr[3] << 8 | w->hdr[4];
		if (len > SSL3_RT_MAX_ENCRYPTED_LENGTH)
			return i - 1;
		w->left = len;
		w->have = 0;
		w->seen++;
	}
	return n;
}

/* Called around every read and write of the TLS socket BIO. */
static long
first_records(BIO *b, int oper, const char *argp, size_t len, int argi,
    long argl, int ret, size_t *processed)
{
	struct mt_starttls_watch *w = (struct mt_starttls_watch *)(void *)
	    BIO_get_callback_arg(b);
	char buf[INJECTION_PEEK], why[256];
	size_t bad, n;
	ssize_t more;
	unsigned flags;

	(void)len;
	(void)argi;
	(void)argl;
	if (oper != (BIO_CB_READ | BIO_CB_RETURN) || ret <= 0 ||
	    processed == NULL || *processed == 0)
		return ret;
	if ((bad = mt_starttls_watch_scan(w, (const unsigned char *)argp,
	    *processed)) == *processed)
		return ret;
	/* For the log: from the bad header on, and what else is waiting. */
	flags = w->seen > 0 ? MT_STARTTLS_INJ_DURING : 0;
	bad -= bad < w->have - 1 ? bad : w->have - 1;
	n = *processed - bad < sizeof(buf) ? *processed - bad : sizeof(buf);
	memcpy(buf, argp + bad, n);
	more = recv((int)BIO_get_fd(b, NULL), buf + n, sizeof(buf) - n,
	    MSG_PEEK | MSG_DONTWAIT);
	if (more > 0)
		n += (size_t)more;
	if (n == sizeof(buf))
		flags |= MT_STARTTLS_INJ_MORE;
	mt_starttls_injection_phrase(w->proto, buf, n, flags, why,
	    sizeof(why));
	free(w->injection);
	if ((w->injection = strdup(why)) == NULL)
		w->injection = strdup("plaintext injection");
	/* Fail the read: OpenSSL never parses these bytes. */
	return -1;
}

void
mt_starttls_watch_begin(struct mt_starttls_watch *w, SSL *ssl,
    enum mt_protocol proto)
{
	BIO *b = SSL_get_rbio(ssl);

	mt_starttls_watch_clear(w);
	memset(w, 0, sizeof(*w));
	w->proto = proto;
	BIO_set_callback_arg(b, (char *)(void *)w);
	BIO_set_callback_ex(b, first_records);
}

void
mt_starttls_watch_end(struct mt_starttls_watch *w, SSL *ssl)
{
	(void)w;
	if (ssl != NULL && SSL_get_rbio(ssl) != NULL)
		BIO_set_callback_ex(SSL_get_rbio(ssl), NULL);
}

const char *
mt_starttls_watch_injection(const struct mt_starttls_watch *w)
{
	return w->injection;
}

void
mt_starttls_watch_clear(struct mt_starttls_watch *w)
{
	free(w->injection);
	w->injection = NULL;
}
