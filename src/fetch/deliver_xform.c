/*
 * deliver_xform: the streaming rewrite between the wire and the disk.
 * CRLF becomes LF (a lone CR stays); in mboxrd, a line matching ^>*From
 * gets one more '>'. State carries across chunk boundaries and holds counts,
 * never bytes, so a line of a million '>' costs nothing.
 */
#include "config.h"

#include <string.h>

#include "fetch/deliver_priv.h"

static const char from[] = "From ";

/* One byte out; the common case stays inline. */
static inline int
put1(struct mt_deliver_msg *m, char c)
{
	if (m->olen + 1 >= DL_OBUF)
		return dl_put(m, &c, 1);
	m->obuf[m->olen++] = c;
	m->out_bytes++;
	m->last = c;
	return 0;
}

static int
put_gt(struct mt_deliver_msg *m, uint64_t n)
{
	static const char gts[] = ">>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>";
	size_t k;

	while (n > 0) {
		k = n < sizeof(gts) - 1 ? (size_t)n : sizeof(gts) - 1;
		if (dl_put(m, gts, k) == -1)
			return -1;
		n -= k;
	}
	return 0;
}

/* One byte after CRLF handling. */
static int
logical(struct mt_deliver_msg *m, char c)
{
	struct dl_xform *x = &m->xf;

	if (!x->quote || !x->bol) {
		if (put1(m, c) == -1)
			return -1;
		if (x->quote && c == '\n') {
			x->bol = 1;
			x->gt = 0;
			x->fm = 0;
		}
		return 0;
	}
	if (x->fm == 0 && c == '>') {
		x->gt++;
		return 0;
	}
	if (c == from[x->fm]) {
		if (++x->fm < 5)
			return 0;
		x->bol = 0;
		return (dl_put(m, ">", 1) == -1 || put_gt(m, x->gt) == -1 ||
		    dl_put(m, from, 5) == -1) ? -1 : 0;
	}
	/* Not a From line: give back what was held, then c as usual. */
	x->bol = 0;
	if (put_gt(m, x->gt) == -1 || dl_put(m, from, x->fm) == -1)
		return -1;
	return logical(m, c);
}

static int
step(struct mt_deliver_msg *m, char c)
{
	struct dl_xform *x = &m->xf;

	if (x->lf) {
		if (x->cr) {
			x->cr = 0;
			if (c == '\n')
				return logical(m, '\n');
			if (logical(m, '\r') == -1)
				return -1;
		}
		if (c == '\r') {
			x->cr = 1;
			return 0;
		}
	}
	return logical(m, c);
}

int
dl_xform_write(struct mt_deliver_msg *m, const char *p, size_t n)
{
	struct dl_xform *x = &m->xf;
	const char *nl;
	size_t i = 0, end, k;

	if (!x->lf && !x->quote)
		return dl_put(m, p, n);
	while (i < n) {
		if (x->cr || x->bol) {
			if (step(m, p[i++]) == -1)
				return -1;
			continue;
		}
		if ((nl = memchr(p + i, '\n', n - i)) == NULL) {
			/* No line end here: keep a last CR, it may pair. */
			end = (x->lf && p[n - 1] == '\r') ? n - 1 : n;
			if (dl_put(m, p + i, end - i) == -1)
				return -1;
			i = end;
			if (i < n && step(m, p[i++]) == -1)
				return -1;
			continue;
		}
		/* A whole line: as is, but for the CR of its CRLF. */
		end = (size_t)(nl - p);
		k = (x->lf && end > i && p[end - 1] == '\r') ? end - 1 : end;
		if (dl_put(m, p + i, k - i) == -1 || put1(m, '\n') == -1)
			return -1;
		i = end + 1;
		if (x->quote) {
			x->bol = 1;
			x->gt = 0;
			x->fm = 0;
		}
	}
	return 0;
}

/* End of input: release a held CR and a held line start. */
int
dl_xform_finish(struct mt_deliver_msg *m)
{
	struct dl_xform *x = &m->xf;

	if (x->cr) {
		x->cr = 0;
		if (logical(m, '\r') == -1)
			return -1;
	}
	if (x->quote && x->bol) {
		x->bol = 0;
		if (put_gt(m, x->gt) == -1 || dl_put(m, from, x->fm) == -1)
			return -1;
	}
	return 0;
}
