/*
 * privileges: give up root after start-up: chroot, then the group and
 * the user of the configuration (setuid, setgid). Names are looked up
 * before the chroot, where /etc/passwd may not exist.
 */
#ifndef MAILTUNNEL_PRIVILEGES_H
#define MAILTUNNEL_PRIVILEGES_H

#include "mailtunnel/config.h"

/* 0, or -1 (logged): the daemon must not go on. */
int mt_privileges_drop(const struct mt_config *cfg);

#endif
