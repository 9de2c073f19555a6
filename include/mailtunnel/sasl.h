/*
 * sasl: the byte-level parts of SASL authentication that the POP3 and IMAP
 * fetch clients share: base64, the mechanism names servers advertise, the
 * initial responses for PLAIN, XOAUTH2 and OAUTHBEARER, and the JSON error a
 * server sends back when it refuses an OAuth token.
 *
 * Ownership: the builders return a malloc'd, NUL-terminated base64 string
 * that carries a credential; the caller owns it and must release it with
 * mt_sasl_free(), which wipes it before freeing. Every intermediate buffer
 * that held a secret is wiped inside. Nothing here logs, allocates beyond
 * what it returns, or keeps state; all functions are safe from any thread.
 *
 * Errors: functions that can fail take `const char **why` and store a static
 * English reason that is fit for a log line and never contains a secret.
 */
#ifndef MAILTUNNEL_SASL_H
#define MAILTUNNEL_SASL_H

#include <stddef.h>

/* Mechanisms as bits, so a server's list is one unsigned. */
enum mt_sasl_mech {
	MT_SASL_PLAIN = 1u << 0,
	MT_SASL_LOGIN = 1u << 1,
	MT_SASL_XOAUTH2 = 1u << 2,
	MT_SASL_OAUTHBEARER = 1u << 3,
	MT_SASL_CRAM_MD5 = 1u << 4,
	MT_SASL_SCRAM_SHA_1 = 1u << 5,
	MT_SASL_SCRAM_SHA_256 = 1u << 6,
	MT_SASL_EXTERNAL = 1u << 7,
	MT_SASL_GSSAPI = 1u << 8,
	MT_SASL_NTLM = 1u << 9,
	MT_SASL_ANONYMOUS = 1u << 10,
	MT_SASL_OTHER = 1u << 15	/* a well-formed name not listed here */
};

/*
 * The bit for a mechanism name (case-insensitive, not NUL-terminated), or 0
 * when the name is not in the list above.
 */
unsigned mt_sasl_mech_bit(const char *name, size_t len);
/* The canonical (upper-case) name of one bit; NULL for MT_SASL_OTHER/0. */
const char *mt_sasl_mech_name(unsigned bit);
/* RFC 4422 syntax: 1-20 of A-Z 0-9 - _ (lower case accepted). 1 or 0. */
int mt_sasl_mech_name_valid(const char *name, size_t len);

/*
 * Base64 (RFC 4648, standard alphabet, padded). MT_SASL_B64_LEN(n) is the
 * encoded length of n bytes, without the NUL.
 *
 * Encode writes the NUL-terminated text to out (outsz must be at least
 * MT_SASL_B64_LEN(inlen) + 1) and stores its length. Decode accepts only
 * canonical padded input without whitespace; empty input decodes to
 * nothing. Both return 0, or -1 with *why set.
 */
#define MT_SASL_B64_LEN(n) ((((n) + 2) / 3) * 4)
int mt_sasl_b64_encode(const void *in, size_t inlen, char *out, size_t outsz,
    size_t *outlen, const char **why);
int mt_sasl_b64_decode(const char *in, size_t inlen, void *out, size_t outsz,
    size_t *outlen, const char **why);

/*
 * Initial responses, base64-encoded, ready to follow "AUTH PLAIN " or
 * "AUTHENTICATE XOAUTH2 ". The authorization identity of PLAIN is empty.
 * NULL with *why on a credential that cannot be encoded (a byte the
 * mechanism uses as a separator, an empty user) or on allocation failure.
 * Free the result with mt_sasl_free().
 */
char *mt_sasl_plain(const char *user, const char *password, const char **why);
char *mt_sasl_xoauth2(const char *user, const char *token, const char **why);
/* RFC 7628: "n,a=USER,^Ahost=HOST^Aport=PORT^Aauth=Bearer TOKEN^A^A". */
char *mt_sasl_oauthbearer(const char *user, const char *host, unsigned port,
    const char *token, const char **why);
/* Wipe (OPENSSL_cleanse) and free a string from a builder; NULL is fine. */
void mt_sasl_free(char *s);

/*
 * After an OAuth failure challenge the client must answer before the server
 * sends its final NO/-ERR: an empty line for XOAUTH2, this (a lone ^A) for
 * OAUTHBEARER.
 */
#define MT_SASL_OAUTHBEARER_ABORT "AQ=="

/*
 * The server's error challenge for XOAUTH2/OAUTHBEARER: base64 of a JSON
 * object such as {"status":"invalid_token","schemes":"Bearer","scope":"..."}.
 * Extracts "status" and "scope" (string or number) as printable ASCII,
 * truncated to fit; a field that is absent is left "". Parsing never copies
 * anything else, so a token echoed by a broken server cannot leak into a log
 * line through this. 0, or -1 with *why.
 */
struct mt_sasl_oauth_error {
	char status[64];
	char scope[256];
};
int mt_sasl_oauth_error_parse(const char *b64, size_t len,
    struct mt_sasl_oauth_error *out, const char **why);

#endif
