/*
 * hdrscan: pick the Message-ID and Date values out of a message header as
 * it streams past, for the fingerprint that recognises messages after a
 * UIDVALIDITY change (ledger.h). Pure, fixed size, fed in chunks split
 * anywhere; it stops looking at the first empty line.
 *
 * Values are kept as sent, unfolded (line ends removed, the white space of
 * continuation lines kept), cut at FT_HDR_VALUE_MAX bytes, NUL-terminated.
 * Only the first field of each name counts.
 */
#ifndef MAILTUNNEL_FETCH_HDRSCAN_H
#define MAILTUNNEL_FETCH_HDRSCAN_H

#include <stddef.h>

#define FT_HDR_VALUE_MAX 998
#define FT_HDR_NAME_MAX 32

struct ft_hdrscan {
	int state;
	int field;			/* the field being read: 0 none */
	size_t nlen;
	char name[FT_HDR_NAME_MAX];
	size_t idlen, datelen;
	int have_id, have_date;
	char message_id[FT_HDR_VALUE_MAX + 1];
	char date[FT_HDR_VALUE_MAX + 1];
};

void ft_hdrscan_init(struct ft_hdrscan *h);
void ft_hdrscan_feed(struct ft_hdrscan *h, const char *p, size_t n);
/* 1 once the empty line ending the header was seen. */
int ft_hdrscan_done(const struct ft_hdrscan *h);
/* The values; NULL when the field was not seen. */
const char *ft_hdrscan_message_id(const struct ft_hdrscan *h);
const char *ft_hdrscan_date(const struct ft_hdrscan *h);

#endif
