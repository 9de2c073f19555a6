/*
 * deliver_mbox internals shared by deliver_mbox.c (delivery, locking) and
 * deliver_mbox_scan.c (recovery). The struct mbox is the target's t->priv;
 * the lock it describes has one holder at a time (a message between end
 * and commit, or a recovery).
 */
#ifndef MAILTUNNEL_DELIVER_MBOX_H
#define MAILTUNNEL_DELIVER_MBOX_H

#include <time.h>

#include "fetch/deliver_priv.h"

#define MB_PATH_CAP 3072

struct mbox {
	char path[MB_PATH_CAP];
	char dir[MB_PATH_CAP];
	char lockpath[MB_PATH_CAP + 8];
	int fd;				/* open while locked */
	int dotlocked;			/* we made lockpath */
	int warned;			/* about a dotlock we cannot make */
	const void *holder;
};

int mb_lock(struct mt_deliver *t, struct mbox *mb, const void *holder,
    const struct timespec *since);
void mb_unlock(struct mbox *mb, const void *holder);
void mb_sync_dir(struct mbox *mb);
int mb_recover(struct dl_rec *r);

#endif
