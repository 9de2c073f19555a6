/*
 * imap_client: the IMAP side of a fetch job (struct ft_proto
 * ft_imap_proto). imap_client.c reads responses through the incremental
 * parser (imap_parse.h) and logs in (greeting, CAPABILITY, LOGIN or
 * AUTHENTICATE with SASL-IR when offered); imap_session.c selects a
 * folder, lists its UIDs (UID SEARCH), asks sizes and fingerprints when
 * needed, fetches bodies in pipelined batches (UID FETCH ... BODY.PEEK[]),
 * deletes (UID STORE + UID EXPUNGE or EXPUNGE) and logs out.
 *
 * Commands are tagged A1, A2, ...; every outstanding command has an entry
 * in a small queue that its tagged completion removes. Bodies stream from
 * the parser's FETCH_DATA events straight into the delivery; nothing of a
 * message is held in memory.
 */
#ifndef MAILTUNNEL_FETCH_IMAP_CLIENT_H
#define MAILTUNNEL_FETCH_IMAP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "fetch/fetch_int.h"
#include "fetch/hdrscan.h"
#include "mailtunnel/imap_parse.h"

#define IMC_QUEUE 16
/* Body batches: UIDs, and announced bytes, per UID FETCH. */
#define IMC_BATCH_UIDS 64
#define IMC_BATCH_BYTES (4 * 1024 * 1024)
/* Body batches outstanding at once. */
#define IMC_BATCHES 2
/* UIDs per details (size, fingerprint) request. */
#define IMC_DETAILS_UIDS 500
/* Room for a UID set in one command. */
#define IMC_SET_MAX 2000

enum imc_kind {
	IMC_CAPABILITY,
	IMC_LOGIN,
	IMC_SELECT,
	IMC_SEARCH,
	IMC_DETAILS,
	IMC_BODIES,
	IMC_STORE,
	IMC_EXPUNGE,
	IMC_LOGOUT,
};

struct imc_cmd {
	uint32_t tag;
	uint8_t kind;		/* enum imc_kind */
	size_t first, end;	/* DETAILS, BODIES: j->msgs[first..end);
				   STORE, EXPUNGE: j->redelete[first..end) */
	uint32_t single;	/* BODIES of one UID: that UID, else 0 */
};

struct imc {
	struct mt_imap_parser *parser;
	uint32_t tagn;
	struct imc_cmd q[IMC_QUEUE];
	size_t nq;
	int greeted;
	int logged_in;
	uint32_t caps;
	unsigned auth;
	unsigned mech;
	int creds_sent;		/* AUTHENTICATE: the response went out */
	char oauth_error[128];
	/* The body being received: which message, and for what. */
	struct ft_msg *bm;
	int b_details;		/* HEADER.FIELDS for a fingerprint */
	int b_deliver;		/* into the target */
	struct ft_hdrscan hs;
	/* Fetching. */
	size_t next;		/* next j->msgs index to ask for */
	size_t outstanding;	/* DETAILS or BODIES commands in flight */
	int want_fp;
	int uid_late;		/* the server sent a body before its UID */
	uint32_t *again;	/* asked for one at a time after uid_late */
	size_t nagain, capagain, iagain;
	/* Deleting. */
	size_t rnext;
	int store_failed;
	unsigned long expunged;
	int logging_out;
};

static inline struct imc *
imc_of(struct mt_fetch *j)
{
	return j->ps;
}

/* imap_client.c */
/* Send a tagged command (fmt is what follows the tag); its entry. */
struct imc_cmd *imc_send(struct mt_fetch *j, enum imc_kind kind,
    const char *fmt, ...) MT_PRINTF(3, 4);
/* A NO/BAD reply as a status and a phrase with the server's words. */
enum mt_fetch_status imc_failure(const struct mt_imap_event *ev,
    enum mt_fetch_status fallback);
const char *imc_text(const struct mt_imap_event *ev, char *buf, size_t size);

/* imap_session.c */
void imc_select(struct mt_fetch *j, int writable);
void imc_list(struct mt_fetch *j);
void imc_details(struct mt_fetch *j, int fp);
void imc_fetch(struct mt_fetch *j);
void imc_remove(struct mt_fetch *j);
void imc_logout(struct mt_fetch *j);
/* Untagged events and tagged completions of the session's commands. */
int imc_session_event(struct mt_fetch *j, const struct mt_imap_event *ev);
int imc_session_done(struct mt_fetch *j, const struct imc_cmd *cmd,
    const struct mt_imap_event *ev);

#endif
