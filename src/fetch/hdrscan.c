/*
 * hdrscan: see hdrscan.h.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "fetch/hdrscan.h"

enum { S_BOL, S_BOL_CR, S_NAME, S_VALUE, S_SKIP, S_DONE };
enum { F_NONE, F_ID, F_DATE };

void
ft_hdrscan_init(struct ft_hdrscan *h)
{
	memset(h, 0, sizeof(*h));
	h->state = S_BOL;
}

static void
name_done(struct ft_hdrscan *h)
{
	h->field = F_NONE;
	if (h->nlen == 10 && strncasecmp(h->name, "message-id", 10) == 0 &&
	    !h->have_id) {
		h->have_id = 1;
		h->field = F_ID;
	} else if (h->nlen == 4 && strncasecmp(h->name, "date", 4) == 0 &&
	    !h->have_date) {
		h->have_date = 1;
		h->field = F_DATE;
	}
	h->state = h->field == F_NONE ? S_SKIP : S_VALUE;
}

static void
value_byte(struct ft_hdrscan *h, char c)
{
	if (h->field == F_ID && h->idlen < FT_HDR_VALUE_MAX)
		h->message_id[h->idlen++] = c;
	else if (h->field == F_DATE && h->datelen < FT_HDR_VALUE_MAX)
		h->date[h->datelen++] = c;
}

static void
bol(struct ft_hdrscan *h, char c)
{
	if (c == '\n') {
		h->state = S_DONE;
	} else if (c == '\r') {
		h->state = S_BOL_CR;
	} else if (c == ' ' || c == '\t') {
		/* A continuation of the field before. */
		h->state = h->field == F_NONE ? S_SKIP : S_VALUE;
		value_byte(h, c);
	} else {
		h->field = F_NONE;
		h->name[0] = c;
		h->nlen = 1;
		h->state = S_NAME;
	}
}

void
ft_hdrscan_feed(struct ft_hdrscan *h, const char *p, size_t n)
{
	size_t i;
	char c;

	for (i = 0; i < n && h->state != S_DONE; i++) {
		c = p[i];
		switch (h->state) {
		case S_BOL:
			bol(h, c);
			break;
		case S_BOL_CR:
			h->state = c == '\n' ? S_DONE : S_SKIP;
			break;
		case S_NAME:
			if (c == ':')
				name_done(h);
			else if (c == '\n')
				h->state = S_BOL;
			else if (h->nlen < FT_HDR_NAME_MAX)
				h->name[h->nlen++] = c;
			else
				h->state = S_SKIP;
			break;
		case S_VALUE:
			if (c == '\n')
				h->state = S_BOL;
			else if (c != '\r')
				value_byte(h, c);
			break;
		default:
			if (c == '\n')
				h->state = S_BOL;
			break;
		}
	}
	h->message_id[h->idlen] = '\0';
	h->date[h->datelen] = '\0';
}

int
ft_hdrscan_done(const struct ft_hdrscan *h)
{
	return h->state == S_DONE;
}

const char *
ft_hdrscan_message_id(const struct ft_hdrscan *h)
{
	return h->have_id ? h->message_id : NULL;
}

const char *
ft_hdrscan_date(const struct ft_hdrscan *h)
{
	return h->have_date ? h->date : NULL;
}
