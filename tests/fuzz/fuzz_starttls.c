/*
 * libFuzzer harness for the STARTTLS state machines. The first byte picks
 * the protocol and the mode, the second how the rest is cut into reads:
 * with its top bit set, at each '|' (which is dropped), so that whole
 * replies arrive as the server would send them and the fuzzer reaches
 * the later states; else into pseudo-random lengths seeded by it. The
 * rest is what the server sends. Every call checks the
 * machine's promises: it never takes more than it was given, takes all
 * on NEED_MORE, asks only the commands of its protocol, stays put once
 * done, and explains every failure.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailtunnel/starttls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static int
known_command(enum mt_protocol proto, const char *o, size_t n)
{
	static const char *const cmds[] = { "CAPA\r\n", "STLS\r\n",
	    "mt1 CAPABILITY\r\n", "mt2 STARTTLS\r\n", "EHLO fuzz.example\r\n",
	    "STARTTLS\r\n" };
	size_t i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strlen(cmds[i]) == n && memcmp(o, cmds[i], n) == 0)
			return proto == MT_PROTO_POP3 ? i < 2 :
			    proto == MT_PROTO_IMAP ? i == 2 || i == 3 : i >= 4;
	return 0;
}

static void
check_done(struct mt_starttls *st, enum mt_protocol proto,
    enum mt_starttls_status s, enum mt_starttls_mode mode)
{
	const char *r, *g;
	size_t len, glen, used;

	if (s == MT_STARTTLS_FAILED) {
		CHECK(mt_starttls_reason(st)[0] != '\0');
		CHECK(mt_starttls_error(st) != MT_STARTTLS_E_NONE);
		CHECK(mt_starttls_client_line(proto,
		    mt_starttls_error(st)) != NULL);
		CHECK(mt_starttls_replay(st, &len) == NULL && len == 0);
	}
	if (s == MT_STARTTLS_READY) {
		r = mt_starttls_replay(st, &len);
		g = mt_starttls_greeting(st, &glen);
		CHECK(glen > 0 && glen <= MT_STARTTLS_MAX_LINE + 2);
		if (mode == MT_STARTTLS_FOR_SELF)
			CHECK(r == NULL && len == 0);
		else if (proto != MT_PROTO_IMAP)
			CHECK(len == glen && memcmp(r, g, len) == 0);
		else
			CHECK(len > 0 && memcmp(r, "* OK ", 5) == 0);
	}
	CHECK(mt_starttls_feed(st, "x", 1, &used) == s && used == 0);
	CHECK(mt_starttls_eof(st) == s);
}

/* How long the next read is (see the top of the file). */
static size_t
next_read(const uint8_t *data, size_t size, int bars, unsigned *seed)
{
	const uint8_t *bar;
	size_t n;

	if (bars) {
		bar = memchr(data, '|', size);
		return bar == NULL ? size : bar == data ? 1 : (size_t)(bar - data);
	}
	*seed = *seed * 1103515245u + 12345u;
	n = *seed % 8 == 0 ? size : 1 + (*seed >> 8) % 97;
	return n > size ? size : n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum mt_protocol proto;
	enum mt_starttls_mode mode;
	enum mt_starttls_status s = MT_STARTTLS_NEED_MORE;
	struct mt_starttls_opts o;
	struct mt_starttls *st;
	unsigned seed;
	int bars;
	size_t n, used, olen;
	const char *out;

	if (size < 2)
		return 0;
	proto = (enum mt_protocol)(1 + data[0] % 3);
	mode = (data[0] & 4) ? MT_STARTTLS_FOR_SELF : MT_STARTTLS_FOR_CLIENT;
	seed = data[1];
	bars = (data[1] & 0x80) != 0;
	data += 2;
	size -= 2;
	o.proto = proto;
	o.mode = mode;
	o.ehlo_name = "fuzz.example";
	if ((st = mt_starttls_new(&o)) == NULL)
		return 0;
	while (size > 0 && s == MT_STARTTLS_NEED_MORE) {
		n = next_read(data, size, bars, &seed);
		s = mt_starttls_feed(st, data, n, &used);
		CHECK(used <= n);
		CHECK(s != MT_STARTTLS_NEED_MORE || used == n);
		out = mt_starttls_output(st, &olen);
		CHECK(olen == 0 || known_command(proto, out, olen));
		CHECK(s != MT_STARTTLS_FAILED || olen == 0);
		data += n;
		size -= n;
		if (size > 0 && bars && *data == '|') {
			data++;
			size--;
		}
	}
	if (s == MT_STARTTLS_NEED_MORE) {
		CHECK(mt_starttls_waiting_for(st)[0] != '\0');
		s = mt_starttls_eof(st);
		CHECK(s == MT_STARTTLS_FAILED);
	}
	check_done(st, proto, s, mode);
	mt_starttls_free(st);
	return 0;
}
