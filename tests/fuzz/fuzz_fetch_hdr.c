/*
 * libFuzzer harness for the fetcher's small readers of server data: the
 * header scanner behind fingerprints (fed in two pieces split at the
 * first byte's value, which must not change the outcome), INTERNALDATE,
 * and the mailbox name encoder (UTF-8 to modified UTF-7), whose output
 * must be a quoted string of printable ASCII that fits its buffer.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fetch/hdrscan.h"
#include "fetch/imap_cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static void
same(const char *a, const char *b)
{
	CHECK((a == NULL) == (b == NULL));
	CHECK(a == NULL || strcmp(a, b) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ft_hdrscan *one = malloc(sizeof(*one)), *two = malloc(sizeof(*two));
	const char *p = (const char *)data;
	size_t cut = size > 0 ? data[0] % (size + 1) : 0, i;
	char *s, box[256];
	time_t t;

	CHECK(one != NULL && two != NULL);
	ft_hdrscan_init(one);
	ft_hdrscan_feed(one, p, size);
	ft_hdrscan_init(two);
	ft_hdrscan_feed(two, p, cut);
	ft_hdrscan_feed(two, p + cut, size - cut);
	CHECK(ft_hdrscan_done(one) == ft_hdrscan_done(two));
	same(ft_hdrscan_message_id(one), ft_hdrscan_message_id(two));
	same(ft_hdrscan_date(one), ft_hdrscan_date(two));
	if (ft_hdrscan_message_id(one) != NULL)
		CHECK(strlen(ft_hdrscan_message_id(one)) <= FT_HDR_VALUE_MAX);
	free(one);
	free(two);

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	(void)ft_imap_internaldate(s, &t);
	if (ft_imap_mailbox(box, sizeof(box), s) == 0) {
		size_t n = strlen(box);

		CHECK(n >= 2 && box[0] == '"' && box[n - 1] == '"');
		for (i = 0; i < n; i++)
			CHECK(box[i] >= 0x20 && box[i] < 0x7f);
	}
	free(s);
	return 0;
}
