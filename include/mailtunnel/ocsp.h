/*
 * ocsp: is a verified server chain revoked? Each certificate but the trust
 * anchor is asked about at its OCSP responders (RFC 6960) over HTTP, all
 * at once and without blocking the event loop: first the configured
 * "OCSP = URL", then, with OCSPaia, the responders the certificate names.
 * A certificate that names no responder has nothing to ask and passes.
 */
#ifndef MAILTUNNEL_OCSP_H
#define MAILTUNNEL_OCSP_H

#include <event2/dns.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "mailtunnel/config.h"
#include "mailtunnel/log.h"

enum mt_ocsp_result {
	MT_OCSP_GOOD,		/* every answer good (or nothing to ask) */
	MT_OCSP_REVOKED,	/* a certificate is revoked */
	MT_OCSP_UNCLEAR,	/* some certificate got no clear answer */
};

/* why: words for the log ("certificate ... revoked (keyCompromise) ..."). */
typedef void mt_ocsp_done_fn(void *arg, enum mt_ocsp_result result,
    const char *why);

struct mt_ocsp;

/*
 * Clear answers (good, revoked) remembered per certificate until the
 * response's nextUpdate, at most an hour, so that a busy service asks a
 * responder once, not once per connection. Shared by threads.
 */
struct mt_ocsp_cache;
struct mt_ocsp_cache *mt_ocsp_cache_new(void);
void mt_ocsp_cache_free(struct mt_ocsp_cache *c);

/*
 * Start the checks of ssl's verified chain (after a successful handshake).
 * done is called once, later, from the event loop (never from inside this
 * call), after the check has freed itself. cache may be NULL. NULL when
 * memory ran out.
 */
struct mt_ocsp *mt_ocsp_start(struct event_base *base, struct evdns_base *dns,
    SSL *ssl, const struct mt_ocsp_conf *conf, struct mt_ocsp_cache *cache,
    const struct mt_log_ctx *log, mt_ocsp_done_fn *done, void *arg);
/* Stop and free a running check; done is not called. */
void mt_ocsp_cancel(struct mt_ocsp *o);

/*
 * What an outcome means for the server named server [addr]: 1 go on (good,
 * or unclear with OCSPrequire = no; logged), 0 refuse, with the line that
 * says why in err for the caller to log.
 */
int mt_ocsp_verdict(const struct mt_ocsp_conf *conf,
    const struct mt_log_ctx *log, const char *server, const char *addr,
    enum mt_ocsp_result result, const char *why, char *err, size_t errsz);

#endif
