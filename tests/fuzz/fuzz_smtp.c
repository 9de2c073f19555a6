/*
 * libFuzzer harness for what the smtp/lmtp targets parse or transform.
 *
 * Input: one byte choosing what to test, then the bytes.
 *   0  server replies, parsed one after the other: a complete reply is
 *      used whole and never past the input, its code is 200-599 and its
 *      text printable; an incomplete one uses nothing.
 *   1  a message through the DATA transform in chunks whose sizes come
 *      from the input: every line end is CRLF, no bare CR or LF, no line
 *      is a single "." (so the message cannot end DATA early), and
 *      removing the stuffing gives the input with its line ends made CRLF.
 *   2  a header block: collected, then its Delivered-To, Return-Path and
 *      X-Envelope-To read as addresses, which must be printable and hold
 *      no blanks or angle brackets.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "fetch/deliver_smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static void
replies(const char *p, size_t n)
{
	struct rm_reply r;
	char err[160];
	size_t used, i;
	int rc;

	while (n > 0) {
		rc = rm_reply_parse(p, n, &r, &used, err, sizeof(err));
		if (rc != RM_REPLY_DONE) {
			CHECK(used == 0);
			CHECK(rc == RM_REPLY_MORE || err[0] != '\0');
			return;
		}
		CHECK(used > 0 && used <= n && p[used - 1] == '\n');
		CHECK(r.code >= 200 && r.code <= 599 && r.lines >= 1);
		for (i = 0; r.text[i] != '\0'; i++)
			CHECK(r.text[i] >= 0x20 && r.text[i] < 0x7f);
		p += used;
		n -= used;
	}
}

/* The input with every line end (CRLF, CR, LF) made CRLF, closed. */
static size_t
expected(const char *p, size_t n, char *out)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		if (p[i] == '\r' || p[i] == '\n') {
			if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
				i++;
			out[k++] = '\r';
			out[k++] = '\n';
		} else {
			out[k++] = p[i];
		}
	}
	if (k > 0 && out[k - 1] != '\n') {
		out[k++] = '\r';
		out[k++] = '\n';
	}
	return k;
}

static void
transform(const char *p, size_t n)
{
	struct evbuffer *out = evbuffer_new();
	struct rm_dot x = { 0, 0 };
	size_t off = 0, k, len, i, j = 0;
	unsigned char step = n > 0 ? (unsigned char)p[0] : 1;
	char *got, *want, *unstuffed;

	CHECK(out != NULL);
	for (off = 0; off < n; off += k) {
		k = (size_t)(step % 7) + 1;
		if (k > n - off)
			k = n - off;
		CHECK(rm_dot_write(&x, out, p + off, k) == 0);
		step = (unsigned char)(step * 31 + 7);
	}
	CHECK(rm_dot_finish(&x, out) == 0);
	len = evbuffer_get_length(out);
	got = (char *)evbuffer_pullup(out, -1);
	want = malloc(2 * n + 2);
	unstuffed = malloc(len + 1);
	CHECK(want != NULL && unstuffed != NULL);
	for (i = 0; i < len; i++) {
		CHECK(got[i] != '\n' || (i > 0 && got[i - 1] == '\r'));
		CHECK(got[i] != '\r' || (i + 1 < len && got[i + 1] == '\n'));
		/* Undo the stuffing: one dot less at each line start. */
		if ((i == 0 || got[i - 1] == '\n') && got[i] == '.') {
			CHECK(i + 1 < len && got[i + 1] == '.');
			continue;
		}
		unstuffed[j++] = got[i];
	}
	CHECK(j == expected(p, n, want));
	CHECK(memcmp(unstuffed, want, j) == 0);
	free(want);
	free(unstuffed);
	evbuffer_free(out);
}

static void
header(const char *p, size_t n)
{
	static const char *const names[] = { "Delivered-To", "Return-Path",
	    "X-Envelope-To" };
	char value[1024], addr[DL_ADDR_MAX + 1];
	struct dl_hdr h = { 0 };
	size_t i, k;

	CHECK(dl_hdr_feed(&h, p, n) != -1);
	CHECK(h.len <= n && h.len <= DL_HDR_MAX);
	for (i = 0; i < 3 && h.buf != NULL; i++) {
		if (dl_hdr_field(h.buf, h.len, names[i], value,
		    sizeof(value)) != 1)
			continue;
		CHECK(strlen(value) < sizeof(value));
		if (dl_addr_parse(value, addr, sizeof(addr)) == -1)
			continue;
		for (k = 0; addr[k] != '\0'; k++)
			CHECK(addr[k] > 0x20 && addr[k] < 0x7f &&
			    addr[k] != '<' && addr[k] != '>');
	}
	dl_hdr_free(&h);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	switch (data[0] % 3) {
	case 0:
		replies((const char *)data + 1, size - 1);
		break;
	case 1:
		transform((const char *)data + 1, size - 1);
		break;
	default:
		header((const char *)data + 1, size - 1);
		break;
	}
	return 0;
}
