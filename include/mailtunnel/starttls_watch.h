/*
 * starttls_watch: the two checks for plaintext injection that every
 * STARTTLS client needs once the state machine (starttls.h) says READY.
 * The tunnel and the fetcher share them.
 *
 *   1. At the switch: mt_starttls_switch_check() peeks at the socket. Any
 *      byte already waiting came before our first TLS record could have
 *      been answered: an injection. A closed socket is reported too.
 *   2. During the handshake: mt_starttls_watch_begin() hangs a callback on
 *      the SSL's read BIO that walks the TLS record headers of what the
 *      server sends. A first record that is not a handshake or an alert,
 *      or any header that is not TLS (type 20 to 23, version 3.x, a length
 *      TLS allows), is plaintext after STARTTLS: the read is failed right
 *      there, so OpenSSL never parses those bytes, and
 *      mt_starttls_watch_injection() gives the phrase for the log (rather
 *      than the "wrong version number" OpenSSL would report). Each header
 *      byte is judged as it arrives, so even a short injection followed by
 *      silence is caught. Call mt_starttls_watch_end() once the handshake
 *      is done.
 *
 * Ownership: the caller embeds struct mt_starttls_watch, which must stay
 * at the same address from begin to end, and frees the phrase with
 * mt_starttls_watch_clear(). The SSL must have a BIO that answers
 * BIO_get_fd() (the stream's BIO does).
 */
#ifndef MAILTUNNEL_STARTTLS_WATCH_H
#define MAILTUNNEL_STARTTLS_WATCH_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "mailtunnel/config.h"

struct mt_starttls_watch {
	enum mt_protocol proto;
	unsigned char hdr[5];		/* the record header being read */
	unsigned have;			/* bytes of it so far */
	size_t left;			/* bytes of the record body to skip */
	unsigned seen;			/* whole headers so far */
	char *injection;		/* the phrase, once found */
};

/*
 * After READY: 0 when the socket holds nothing yet (start TLS now); -1
 * with the reason in why otherwise. buffered counts server bytes the
 * caller already read past the accepting line (an injection too).
 * *closed is 1 when the server closed or the socket failed (why says
 * which), 0 for an injection.
 */
int mt_starttls_switch_check(int fd, enum mt_protocol proto, size_t buffered,
    int *closed, char *why, size_t n);

/* Watch the record headers read through ssl's read BIO. */
void mt_starttls_watch_begin(struct mt_starttls_watch *w, SSL *ssl,
    enum mt_protocol proto);
/* Stop watching (ssl may be NULL: nothing to undo). */
void mt_starttls_watch_end(struct mt_starttls_watch *w, SSL *ssl);
/* The injection phrase once a read was failed for it, else NULL. */
const char *mt_starttls_watch_injection(const struct mt_starttls_watch *w);
/* Free the phrase. */
void mt_starttls_watch_clear(struct mt_starttls_watch *w);

/*
 * Walk n bytes of what the server sent through the header state of w;
 * returns n when all of it is TLS, else the offset of the first byte that
 * is not (the header it belongs to may have started in an earlier call).
 * Pure; exported for tests.
 */
size_t mt_starttls_watch_scan(struct mt_starttls_watch *w,
    const unsigned char *p, size_t n);

#endif
