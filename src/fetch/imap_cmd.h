/*
 * imap_cmd: pure helpers that build pieces of IMAP commands and read
 * pieces of responses for the IMAP client: UID sets, quoted strings,
 * mailbox names in modified UTF-7, INTERNALDATE. No allocation, no state;
 * output goes to the caller's buffer, always NUL-terminated.
 */
#ifndef MAILTUNNEL_FETCH_IMAP_CMD_H
#define MAILTUNNEL_FETCH_IMAP_CMD_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * Write the sorted, distinct UIDs uids[0..n) as a sequence set
 * ("1:5,7,9:12") of at most size - 1 bytes. Returns how many UIDs it
 * covers (at least one when size allows any), 0 when not even one fits.
 */
size_t ft_imap_uid_set(char *buf, size_t size, const uint32_t *uids,
    size_t n);

/*
 * The same for ranges r[0..n) (lo <= hi; a range with lo 0 is left out):
 * how many ranges it covers.
 */
struct ft_range;
size_t ft_imap_range_set(char *buf, size_t size, const struct ft_range *r,
    size_t n);

/*
 * s as an IMAP quoted string ("..." with \" and \\). -1 when s holds a
 * byte a quoted string cannot carry (NUL, CR, LF, 8-bit) or does not fit.
 */
int ft_imap_quote(char *buf, size_t size, const char *s);

/*
 * A mailbox name (UTF-8) as the server expects it: modified UTF-7 (RFC
 * 3501 5.1.3), quoted. -1 when s is not valid UTF-8 or does not fit.
 */
int ft_imap_mailbox(char *buf, size_t size, const char *s);

/*
 * INTERNALDATE "17-Jul-1996 02:44:25 -0700" (a leading space for one-digit
 * days is accepted) to a time. 0, or -1 when malformed.
 */
int ft_imap_internaldate(const char *s, time_t *t);

#endif
