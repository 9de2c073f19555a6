/*
 * privileges: see include/mailtunnel/privileges.h.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mailtunnel/log.h"
#include "mailtunnel/privileges.h"
#include "mailtunnel/util.h"

static int
lookup_ids(const struct mt_config *cfg, uid_t *uid, gid_t *gid, int *set_uid,
    int *set_gid)
{
	unsigned long long n;
	struct passwd *pw = NULL;
	struct group *gr;

	*set_uid = *set_gid = 0;
	if (cfg->setuid_user != NULL) {
		if (mt_parse_uint(cfg->setuid_user, 0, 0xFFFFFFFEULL, &n) == 0) {
			*uid = (uid_t)n;
			pw = getpwuid(*uid);
		} else if ((pw = getpwnam(cfg->setuid_user)) != NULL) {
			*uid = pw->pw_uid;
		} else {
			mt_log(MT_LOG_ERR, "setuid: no such user '%s'",
			    cfg->setuid_user);
			return -1;
		}
		*set_uid = 1;
	}
	if (cfg->setgid_group != NULL) {
		if (mt_parse_uint(cfg->setgid_group, 0, 0xFFFFFFFEULL, &n) == 0)
			*gid = (gid_t)n;
		else if ((gr = getgrnam(cfg->setgid_group)) != NULL)
			*gid = gr->gr_gid;
		else {
			mt_log(MT_LOG_ERR, "setgid: no such group '%s'",
			    cfg->setgid_group);
			return -1;
		}
		*set_gid = 1;
	} else if (pw != NULL) {
		*gid = pw->pw_gid;	/* the user's own group */
		*set_gid = 1;
	}
	return 0;
}

/* chroot, then give up root for good. Names are looked up before chroot. */
int
mt_privileges_drop(const struct mt_config *cfg)
{
	uid_t uid = getuid();
	gid_t gid = getgid();
	int set_uid, set_gid;

	if (lookup_ids(cfg, &uid, &gid, &set_uid, &set_gid) == -1)
		return -1;
	/*
	 * Already that user and group (systemd's User= and Group=): there is
	 * nothing to give up, and setgroups() would fail without root.
	 */
	if (geteuid() != 0 && (!set_uid || uid == geteuid()) &&
	    (!set_gid || gid == getegid()))
		set_uid = set_gid = 0;
	/* So that SIGUSR1 can reopen it after logrotate. */
	if (cfg->output != NULL && set_uid && chown(cfg->output, uid, gid) == -1)
		mt_log(MT_LOG_WARNING, "cannot give log file %s to uid %lu: %s; "
		    "SIGUSR1 may fail to reopen it", cfg->output,
		    (unsigned long)uid, strerror(errno));
	if (cfg->chroot_dir != NULL &&
	    (chroot(cfg->chroot_dir) == -1 || chdir("/") == -1)) {
		mt_log(MT_LOG_ERR, "chroot %s: %s", cfg->chroot_dir,
		    strerror(errno));
		return -1;
	}
	if (set_gid && (setgroups(1, &gid) == -1 || setgid(gid) == -1)) {
		mt_log(MT_LOG_ERR, "cannot switch to group %lu: %s",
		    (unsigned long)gid, strerror(errno));
		return -1;
	}
	if (set_uid && setuid(uid) == -1) {
		mt_log(MT_LOG_ERR, "cannot switch to user %lu: %s",
		    (unsigned long)uid, strerror(errno));
		return -1;
	}
	if (set_uid && uid != 0 && setuid(0) == 0) {
		mt_log(MT_LOG_ERR, "could regain root after setuid; refusing "
		    "to run");
		return -1;
	}
	if (set_uid || set_gid)
		mt_log(MT_LOG_INFO, "running as uid %lu, gid %lu",
		    (unsigned long)getuid(), (unsigned long)getgid());
	return 0;
}

