/*
 * util: small pure helpers for strings and numbers. No allocation unless a
 * function says so; no logging; no global state.
 */
#ifndef MAILTUNNEL_UTIL_H
#define MAILTUNNEL_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define MT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Trim ASCII whitespace at both ends, in place; returns the new start. */
char *mt_str_trim(char *s);

/* strlcpy: copy at most size-1 bytes, always NUL-terminate, return strlen(src). */
size_t mt_strlcpy(char *dst, const char *src, size_t size);

/* Case-insensitive ASCII prefix test. */
int mt_str_has_prefix_ci(const char *s, const char *prefix);

/*
 * Edit distance (Damerau-Levenshtein with adjacent transpositions),
 * ASCII case-insensitive, for "did you mean" hints. Strings longer than 64
 * bytes count as infinitely far apart.
 */
unsigned mt_str_distance(const char *a, const char *b);

/*
 * Number parsers. Each returns 0 and stores the value, or -1 on anything but
 * a whole, in-range value. Surrounding whitespace is not accepted; callers
 * trim first.
 */
int mt_parse_bool(const char *s, int *out);	/* yes/no, true/false, on/off, 1/0 */
int mt_parse_uint(const char *s, unsigned long long min,
    unsigned long long max, unsigned long long *out);
/*
 * Durations: "300" (seconds), "5m", "2h", "30d", "1w", "1h30m", "1.5s" is
 * not accepted. Units s, m, h, d, w, case-insensitive. Result in seconds.
 */
int mt_parse_duration(const char *s, unsigned long long *seconds);
/* Sizes: "1048576", "512k", "10M", "1G" (powers of 1024; optional B). */
int mt_parse_size(const char *s, unsigned long long *bytes);

/* write(2) all of buf, across short writes and EINTR: 0, or -1 (errno). */
int mt_write_all(int fd, const void *buf, size_t n);

/* Render seconds as the shortest exact duration: 300 -> "5m", 90 -> "90s". */
void mt_format_duration(unsigned long long seconds, char *buf, size_t size);

#endif
