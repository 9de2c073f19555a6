/*
 * fetch/imap_items: the parts of an IMAP response that carry names: response
 * codes, capabilities, flag lists and FETCH items. See imap_rd.h.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "imap_rd.h"
#include "mailtunnel/sasl.h"
#include "mailtunnel/util.h"

struct name_bit {
	const char *name;
	unsigned bit;
};

static unsigned
lookup(const struct name_bit *t, size_t n, const struct mt_imap_str *s)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (rd_is(s, t[i].name))
			return t[i].bit;
	}
	return 0;
}

static const struct name_bit codes[] = {
	{ "ALERT", MT_IMAP_CODE_ALERT },
	{ "AUTHENTICATIONFAILED", MT_IMAP_CODE_AUTHENTICATIONFAILED },
	{ "AUTHORIZATIONFAILED", MT_IMAP_CODE_AUTHORIZATIONFAILED },
	{ "EXPIRED", MT_IMAP_CODE_EXPIRED },
	{ "PRIVACYREQUIRED", MT_IMAP_CODE_PRIVACYREQUIRED },
	{ "CONTACTADMIN", MT_IMAP_CODE_CONTACTADMIN },
	{ "UNAVAILABLE", MT_IMAP_CODE_UNAVAILABLE },
	{ "INUSE", MT_IMAP_CODE_INUSE },
	{ "LIMIT", MT_IMAP_CODE_LIMIT },
	{ "OVERQUOTA", MT_IMAP_CODE_OVERQUOTA },
	{ "SERVERBUG", MT_IMAP_CODE_SERVERBUG },
	{ "NONEXISTENT", MT_IMAP_CODE_NONEXISTENT },
	{ "CANNOT", MT_IMAP_CODE_CANNOT },
	{ "EXPUNGEISSUED", MT_IMAP_CODE_EXPUNGEISSUED },
	{ "CORRUPTION", MT_IMAP_CODE_CORRUPTION },
	{ "CAPABILITY", MT_IMAP_CODE_CAPABILITY },
	{ "UIDVALIDITY", MT_IMAP_CODE_UIDVALIDITY },
	{ "UIDNEXT", MT_IMAP_CODE_UIDNEXT },
	{ "UNSEEN", MT_IMAP_CODE_UNSEEN },
	{ "PERMANENTFLAGS", MT_IMAP_CODE_PERMANENTFLAGS },
	{ "READ-ONLY", MT_IMAP_CODE_READ_ONLY },
	{ "READ-WRITE", MT_IMAP_CODE_READ_WRITE },
	{ "TRYCREATE", MT_IMAP_CODE_TRYCREATE },
	{ "PARSE", MT_IMAP_CODE_PARSE },
	{ "CLOSED", MT_IMAP_CODE_CLOSED },
};

const char *
mt_imap_code_name(enum mt_imap_code_kind kind)
{
	size_t i;

	if (kind == MT_IMAP_CODE_NONE)
		return "";
	for (i = 0; i < MT_ARRAY_LEN(codes); i++) {
		if (codes[i].bit == (unsigned)kind)
			return codes[i].name;
	}
	return "other";
}

enum mt_imap_failure
mt_imap_code_failure(enum mt_imap_code_kind kind)
{
	switch (kind) {
	case MT_IMAP_CODE_AUTHENTICATIONFAILED:
	case MT_IMAP_CODE_AUTHORIZATIONFAILED:
	case MT_IMAP_CODE_EXPIRED:
	case MT_IMAP_CODE_CONTACTADMIN:
		return MT_IMAP_FAIL_AUTH;
	case MT_IMAP_CODE_UNAVAILABLE:
	case MT_IMAP_CODE_INUSE:
	case MT_IMAP_CODE_LIMIT:
	case MT_IMAP_CODE_SERVERBUG:
	case MT_IMAP_CODE_EXPUNGEISSUED:
		return MT_IMAP_FAIL_TEMP;
	case MT_IMAP_CODE_PRIVACYREQUIRED:
	case MT_IMAP_CODE_OVERQUOTA:
	case MT_IMAP_CODE_NONEXISTENT:
	case MT_IMAP_CODE_CANNOT:
	case MT_IMAP_CODE_CORRUPTION:
	case MT_IMAP_CODE_TRYCREATE:
		return MT_IMAP_FAIL_PERM;
	default:
		return MT_IMAP_FAIL_UNKNOWN;
	}
}

static const struct name_bit caps[] = {
	{ "IMAP4rev1", MT_IMAP_CAP_IMAP4REV1 },
	{ "IMAP4rev2", MT_IMAP_CAP_IMAP4REV2 },
	{ "STARTTLS", MT_IMAP_CAP_STARTTLS },
	{ "LOGINDISABLED", MT_IMAP_CAP_LOGINDISABLED },
	{ "SASL-IR", MT_IMAP_CAP_SASL_IR },
	{ "IDLE", MT_IMAP_CAP_IDLE },
	{ "LITERAL+", MT_IMAP_CAP_LITERAL_PLUS },
	{ "LITERAL-", MT_IMAP_CAP_LITERAL_MINUS },
	{ "UIDPLUS", MT_IMAP_CAP_UIDPLUS },
	{ "ESEARCH", MT_IMAP_CAP_ESEARCH },
	{ "CONDSTORE", MT_IMAP_CAP_CONDSTORE },
	{ "QRESYNC", MT_IMAP_CAP_QRESYNC },
	{ "ENABLE", MT_IMAP_CAP_ENABLE },
	{ "ID", MT_IMAP_CAP_ID },
	{ "MOVE", MT_IMAP_CAP_MOVE },
	{ "BINARY", MT_IMAP_CAP_BINARY },
	{ "UNSELECT", MT_IMAP_CAP_UNSELECT },
	{ "NAMESPACE", MT_IMAP_CAP_NAMESPACE },
	{ "SPECIAL-USE", MT_IMAP_CAP_SPECIAL_USE },
	{ "UTF8=ACCEPT", MT_IMAP_CAP_UTF8_ACCEPT },
	{ "COMPRESS=DEFLATE", MT_IMAP_CAP_COMPRESS_DEFLATE },
	{ "X-GM-EXT-1", MT_IMAP_CAP_X_GM_EXT_1 },
};

static void
cap_word(struct mt_imap_caps *c, const struct mt_imap_str *w)
{
	unsigned bit;

	if (w->len > 5 && strncasecmp(w->p, "AUTH=", 5) == 0) {
		if (!mt_sasl_mech_name_valid(w->p + 5, w->len - 5))
			return;
		bit = mt_sasl_mech_bit(w->p + 5, w->len - 5);
		c->auth |= bit != 0 ? bit : MT_SASL_OTHER;
		return;
	}
	c->flags |= lookup(caps, MT_ARRAY_LEN(caps), w);
}

/* Atoms separated by spaces; a trailing space is forgiven. */
int
rd_caps(struct rd *r, struct mt_imap_caps *c)
{
	struct mt_imap_str w;
	size_t start = r->pos;

	memset(c, 0, sizeof(*c));
	for (;;) {
		if (rd_atom(r, &w, "expected a capability name") == -1)
			return -1;
		cap_word(c, &w);
		c->raw.p = r->b + start;
		c->raw.len = r->pos - start;
		if (rd_peek(r) != ' ')
			return 0;
		r->pos++;
		if (!rd_is_atom_char(rd_peek(r)))
			return 0;
	}
}

/* After "[": name [SP argument]; the caller reads the "]". */
int
rd_code(struct rd *r, struct mt_imap_code *code)
{
	size_t start;
	int c;

	if (rd_atom(r, &code->name, "expected a response code after '['") == -1)
		return -1;
	code->kind = lookup(codes, MT_ARRAY_LEN(codes), &code->name);
	if (code->kind == MT_IMAP_CODE_NONE)
		code->kind = MT_IMAP_CODE_OTHER;
	if (rd_peek(r) != ' ') {
		if (code->kind == MT_IMAP_CODE_UIDVALIDITY ||
		    code->kind == MT_IMAP_CODE_UIDNEXT ||
		    code->kind == MT_IMAP_CODE_CAPABILITY)
			return rd_fail(r, "expected a space and an argument "
			    "after the response code");
		return 0;
	}
	r->pos++;
	start = r->pos;
	switch (code->kind) {
	case MT_IMAP_CODE_CAPABILITY:
		if (rd_caps(r, &code->caps) == -1)
			return -1;
		break;
	case MT_IMAP_CODE_UIDVALIDITY:
	case MT_IMAP_CODE_UIDNEXT:
	case MT_IMAP_CODE_UNSEEN:
		if (rd_nz32(r, &code->number,
		    "expected a number after the response code") == -1)
			return -1;
		break;
	default:
		while ((c = rd_peek(r)) != -1 && c != ']' && c != '\r' &&
		    c != '\n')
			r->pos++;
	}
	code->arg.p = r->b + start;
	code->arg.len = r->pos - start;
	return 0;
}

static const struct name_bit msg_flags[] = {
	{ "\\Seen", MT_IMAP_FLAG_SEEN },
	{ "\\Answered", MT_IMAP_FLAG_ANSWERED },
	{ "\\Flagged", MT_IMAP_FLAG_FLAGGED },
	{ "\\Deleted", MT_IMAP_FLAG_DELETED },
	{ "\\Draft", MT_IMAP_FLAG_DRAFT },
	{ "\\Recent", MT_IMAP_FLAG_RECENT },
	{ "\\*", MT_IMAP_FLAG_WILDCARD },
};

static const struct name_bit list_attrs[] = {
	{ "\\Noselect", MT_IMAP_LIST_NOSELECT },
	{ "\\NoInferiors", MT_IMAP_LIST_NOINFERIORS },
	{ "\\HasChildren", MT_IMAP_LIST_HASCHILDREN },
	{ "\\HasNoChildren", MT_IMAP_LIST_HASNOCHILDREN },
	{ "\\Marked", MT_IMAP_LIST_MARKED },
	{ "\\Unmarked", MT_IMAP_LIST_UNMARKED },
	{ "\\NonExistent", MT_IMAP_LIST_NONEXISTENT },
	{ "\\Subscribed", MT_IMAP_LIST_SUBSCRIBED },
	{ "\\All", MT_IMAP_LIST_ALL },
	{ "\\Archive", MT_IMAP_LIST_ARCHIVE },
	{ "\\Drafts", MT_IMAP_LIST_DRAFTS },
	{ "\\Flagged", MT_IMAP_LIST_FLAGGED },
	{ "\\Junk", MT_IMAP_LIST_JUNK },
	{ "\\Sent", MT_IMAP_LIST_SENT },
	{ "\\Trash", MT_IMAP_LIST_TRASH },
};

/* One flag: ["\"] atom, or "\*". */
static int
flag(struct rd *r, struct mt_imap_str *f)
{
	size_t start = r->pos;

	if (rd_peek(r) == '\\') {
		r->pos++;
		if (rd_peek(r) == '*') {
			r->pos++;
			f->p = r->b + start;
			f->len = 2;
			return 0;
		}
	}
	if (rd_atom(r, f, "expected a flag") == -1)
		return -1;
	f->p = r->b + start;
	f->len = r->pos - start;
	return 0;
}

int
rd_flag_list(struct rd *r, int is_list, unsigned *bits, unsigned *others)
{
	struct mt_imap_str f;
	unsigned bit;

	*bits = 0;
	*others = 0;
	if (rd_char(r, '(', "expected '(' to start a flag list") == -1)
		return -1;
	if (rd_peek(r) == ')') {
		r->pos++;
		return 0;
	}
	for (;;) {
		if (flag(r, &f) == -1)
			return -1;
		bit = is_list ? lookup(list_attrs, MT_ARRAY_LEN(list_attrs), &f) :
		    lookup(msg_flags, MT_ARRAY_LEN(msg_flags), &f);
		if (bit != 0)
			*bits |= bit;
		else
			(*others)++;
		if (rd_peek(r) != ' ')
			break;
		r->pos++;
	}
	return rd_char(r, ')', "expected a space or ')' in a flag list");
}

/* "[section]" after BODY or BINARY, and an optional "<origin>". */
static int
section(struct rd *r, struct mt_imap_fetch *f)
{
	size_t start = ++r->pos, n;
	unsigned depth = 0;
	int c;

	while ((c = rd_peek(r)) != ']' || depth > 0) {
		if (c == -1 || c == '\r' || c == '\n')
			return rd_fail(r, "expected ']' to end the section");
		if (c == '(')
			depth++;
		if (c == ')' && depth > 0)
			depth--;
		r->pos++;
	}
	n = r->pos - start;
	if (n >= sizeof(f->section))
		n = sizeof(f->section) - 1;
	memcpy(f->section, r->b + start, n);
	f->section[n] = '\0';
	r->pos++;
	f->has_origin = 0;
	if (rd_peek(r) == '<') {
		r->pos++;
		if (rd_number(r, UINT64_MAX, &f->origin,
		    "expected a number after '<'") == -1 ||
		    rd_char(r, '>', "expected '>' after the origin") == -1)
			return -1;
		f->has_origin = 1;
	}
	return 0;
}

/* The value of a body item: a literal (streamed), a quoted string, NIL. */
static int
body_value(struct rd *r, struct mt_imap_fetch *f)
{
	struct mt_imap_str s;
	int c = rd_peek(r);

	f->have |= MT_IMAP_FETCH_BODY;
	if (c == '{' || c == '~') {
		if (rd_literal(r, &s, 1) == -1) {
			if (r->res->pending) {
				f->body_kind = MT_IMAP_BODY_STREAMED;
				f->body_len = r->res->lit_size;
			}
			return -1;
		}
	} else if (c == '"') {
		if (rd_quoted(r, &s) == -1)
			return -1;
	} else {
		if (rd_atom(r, &s, "expected a literal, a quoted string or NIL") ==
		    -1 || !rd_is(&s, "NIL"))
			return rd_fail(r, "expected a literal, a quoted string "
			    "or NIL");
		f->body_kind = MT_IMAP_BODY_NIL;
		f->body_len = 0;
		return 0;
	}
	f->body_kind = MT_IMAP_BODY_INLINE;
	f->body_inline = s;
	f->body_len = s.len;
	return 0;
}

static int
internaldate(struct rd *r, struct mt_imap_fetch *f)
{
	struct mt_imap_str s;

	if (rd_peek(r) != '"')
		return rd_fail(r, "expected a quoted date after INTERNALDATE");
	if (rd_quoted(r, &s) == -1)
		return -1;
	if (s.len >= sizeof(f->internaldate))
		return rd_fail(r, "INTERNALDATE too long");
	memcpy(f->internaldate, s.p, s.len);
	f->internaldate[s.len] = '\0';
	f->have |= MT_IMAP_FETCH_INTERNALDATE;
	return 0;
}

/* A value for the item called name (a section, if any, was read). */
static int
item_value(struct rd *r, const struct mt_imap_str *name, int has_section,
    struct mt_imap_fetch *f)
{
	uint64_t v;

	if (rd_is(name, "UID")) {
		f->have |= MT_IMAP_FETCH_UID;
		return rd_nz32(r, &f->uid, "expected a number after UID");
	}
	if (rd_is(name, "RFC822.SIZE")) {
		f->have |= MT_IMAP_FETCH_SIZE;
		return rd_number(r, INT64_MAX, &f->size,
		    "expected a number after RFC822.SIZE");
	}
	if (rd_is(name, "INTERNALDATE"))
		return internaldate(r, f);
	if (rd_is(name, "FLAGS")) {
		f->have |= MT_IMAP_FETCH_FLAGS;
		return rd_flag_list(r, 0, &f->flags, &f->keywords);
	}
	if (rd_is(name, "MODSEQ")) {
		f->have |= MT_IMAP_FETCH_MODSEQ;
		if (rd_char(r, '(', "expected '(' after MODSEQ") == -1 ||
		    rd_number(r, UINT64_MAX, &f->modseq,
		    "expected a number after MODSEQ (") == -1)
			return -1;
		return rd_char(r, ')', "expected ')' after the MODSEQ number");
	}
	if (has_section && (rd_is(name, "BODY") || rd_is(name, "BINARY"))) {
		f->binary = rd_is(name, "BINARY");
		return body_value(r, f);
	}
	if (!has_section && (rd_is(name, "RFC822") ||
	    rd_is(name, "RFC822.HEADER") || rd_is(name, "RFC822.TEXT"))) {
		f->binary = 0;
		f->has_origin = 0;
		memcpy(f->section, name->p, name->len);
		f->section[name->len] = '\0';
		return body_value(r, f);
	}
	if (has_section && rd_is(name, "BINARY.SIZE"))
		return rd_number(r, UINT64_MAX, &v,
		    "expected a number after BINARY.SIZE");
	/* ENVELOPE, BODYSTRUCTURE, X-GM-LABELS...: not ours to keep. */
	return rd_skip_value(r);
}

static int
item(struct rd *r, struct mt_imap_fetch *f)
{
	struct mt_imap_fetch tmp;
	struct mt_imap_str name;
	size_t start = r->pos;
	int c, has_section = 0;

	while ((c = rd_peek(r)) != '[' && rd_is_atom_char(c))
		r->pos++;
	if (r->pos == start)
		return rd_fail(r, "expected a FETCH item name");
	name.p = r->b + start;
	name.len = r->pos - start;
	if (c == '[') {
		/* A section only matters for a body; others keep theirs. */
		tmp = *f;
		if (section(r, &tmp) == -1)
			return -1;
		has_section = 1;
		if (rd_is(&name, "BODY") || rd_is(&name, "BINARY")) {
			memcpy(f->section, tmp.section, sizeof(f->section));
			f->has_origin = tmp.has_origin;
			f->origin = tmp.origin;
		}
	}
	if (rd_char(r, ' ', "expected a space after the FETCH item name") == -1)
		return -1;
	return item_value(r, &name, has_section, f);
}

/* "(" item *(SP item) ")"; after a streamed body: *(SP item) ")". */
int
rd_msg_att(struct rd *r, int cont)
{
	struct mt_imap_fetch *f = &r->res->fetch;

	if (!cont) {
		if (rd_char(r, '(', "expected '(' after FETCH") == -1 ||
		    item(r, f) == -1)
			return -1;
	}
	for (;;) {
		if (rd_peek(r) == ')') {
			r->pos++;
			return 0;
		}
		if (rd_char(r, ' ', "expected a space or ')' after a FETCH "
		    "item") == -1 || item(r, f) == -1)
			return -1;
	}
}
