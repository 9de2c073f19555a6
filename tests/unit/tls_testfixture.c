/*
 * tls_testfixture: the PKI shared by the TLS tests (see tp_pki() in
 * tls_testpki.h): CAs, leaf variants and the files that point at them.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "tls_testpki.h"

static struct tp_pki pki;
static int pki_ready;

#define NAMES "mail.example.net,pop.example.net"

static int
make_cas(struct tp_pki *p)
{
	const struct tp_spec root = { .cn = "Test Root", .ca = 1 };
	const struct tp_spec inter = { .cn = "Test Intermediate", .ca = 1 };
	const struct tp_spec oroot = { .cn = "Other Root", .ca = 1 };
	const struct tp_spec ointer = { .cn = "Other Intermediate", .ca = 1 };

	if (tp_make(&p->root, &root, NULL) == -1 ||
	    tp_make(&p->inter, &inter, &p->root) == -1 ||
	    tp_make(&p->other_root, &oroot, NULL) == -1 ||
	    tp_make(&p->other_inter, &ointer, &p->other_root) == -1)
		return -1;
	return 0;
}

static int
make_leaves(struct tp_pki *p)
{
	const char *leaf = "mail.example.net", *eku = "serverAuth";
	const struct tp_spec good = { leaf, NAMES, NULL, 0, NULL, NULL, NULL,
	    eku, 0 };
	const struct tp_spec expired = { leaf, NAMES, NULL, 0,
	    "20200101000000Z", "20210101000000Z", NULL, eku, 0 };
	const struct tp_spec notyet = { leaf, NAMES, NULL, 0,
	    "20990101000000Z", "20991231000000Z", NULL, eku, 0 };
	const struct tp_spec rsa = { leaf, NAMES, NULL, 0, NULL, NULL, NULL,
	    eku, 1024 };
	const struct tp_spec sha1 = { leaf, NAMES, NULL, 0, NULL, NULL,
	    EVP_sha1(), eku, 0 };
	const struct tp_spec ip = { "127.0.0.1", NULL, "127.0.0.1,::1", 0,
	    NULL, NULL, NULL, eku, 0 };
	const struct tp_spec client_only = { leaf, NAMES, NULL, 0, NULL, NULL,
	    NULL, "clientAuth", 0 };
	const struct tp_spec wild = { "*.example.net", "*.example.net", NULL,
	    0, NULL, NULL, NULL, eku, 0 };
	const struct tp_spec partial = { "m*.example.net", "m*.example.net",
	    NULL, 0, NULL, NULL, NULL, eku, 0 };
	const struct tp_spec client = { "Test Client", NULL, NULL, 0, NULL,
	    NULL, NULL, "clientAuth", 0 };

	if (tp_make(&p->good, &good, &p->inter) == -1 ||
	    tp_make(&p->expired, &expired, &p->inter) == -1 ||
	    tp_make(&p->notyet, &notyet, &p->inter) == -1 ||
	    tp_make(&p->selfsigned, &good, NULL) == -1 ||
	    tp_make(&p->unknown, &good, &p->other_inter) == -1 ||
	    tp_make(&p->rsa1024, &rsa, &p->inter) == -1 ||
	    tp_make(&p->sha1, &sha1, &p->inter) == -1 ||
	    tp_make(&p->ip, &ip, &p->inter) == -1 ||
	    tp_make(&p->clientonly, &client_only, &p->inter) == -1 ||
	    tp_make(&p->wildcard, &wild, &p->inter) == -1 ||
	    tp_make(&p->partial, &partial, &p->inter) == -1 ||
	    tp_make(&p->client, &client, &p->root) == -1)
		return -1;
	return 0;
}

static void
path(char *out, const char *name)
{
	int r = snprintf(out, TP_PATH, "%s/%s", pki.dir, name);

	/* An empty path fails loudly at its first use. */
	if (r < 0 || r >= TP_PATH)
		out[0] = '\0';
}

static int
write_enc_key(const char *file, EVP_PKEY *key)
{
	FILE *f = fopen(file, "w");
	int ok;

	if (f == NULL)
		return -1;
	ok = PEM_write_PrivateKey(f, key, EVP_aes_128_cbc(), NULL, 0, NULL,
	    (void *)"secret");
	return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* A CApath: x under its subject hash, as openssl rehash names it. */
static int
write_capath(char *dir, const char *name, X509 *x)
{
	char file[TP_PATH + 16];

	path(dir, name);
	if (mkdir(dir, 0700) == -1)
		return -1;
	snprintf(file, sizeof(file), "%s/%08lx.0", dir,
	    X509_NAME_hash_ex(X509_get_subject_name(x), NULL, NULL, NULL));
	return tp_write_pem(file, 0644, &x, 1, NULL);
}

static int
write_files(struct tp_pki *p)
{
	X509 *root_leaf[2] = { p->root.x, p->good.x };
	FILE *f;

	path(p->root_pem, "root.pem");
	path(p->leaf_pem, "leaf.pem");
	path(p->root_leaf_pem, "root-leaf.pem");
	path(p->garbage, "garbage.pem");
	path(p->garbage_key, "garbage.key");
	path(p->client_pem, "client.pem");
	path(p->client_key, "client.key");
	path(p->client_both, "client-both.pem");
	path(p->world_key, "world.key");
	path(p->enc_key, "enc.key");
	path(p->other_key, "other.key");
	path(p->weak_cert, "weak.pem");
	path(p->empty_dir, "empty");
	if (tp_write_pem(p->root_pem, 0644, &p->root.x, 1, NULL) == -1 ||
	    tp_write_pem(p->leaf_pem, 0644, &p->good.x, 1, NULL) == -1 ||
	    tp_write_pem(p->root_leaf_pem, 0644, root_leaf, 2, NULL) == -1 ||
	    tp_write_pem(p->client_pem, 0644, &p->client.x, 1, NULL) == -1 ||
	    tp_write_pem(p->client_key, 0600, NULL, 0, p->client.key) == -1 ||
	    tp_write_pem(p->client_both, 0600, &p->client.x, 1,
	    p->client.key) == -1 ||
	    tp_write_pem(p->world_key, 0644, NULL, 0, p->client.key) == -1 ||
	    tp_write_pem(p->other_key, 0600, NULL, 0, p->good.key) == -1 ||
	    tp_write_pem(p->weak_cert, 0644, &p->rsa1024.x, 1, NULL) == -1 ||
	    write_enc_key(p->enc_key, p->client.key) == -1 ||
	    chmod(p->enc_key, 0600) == -1 || mkdir(p->empty_dir, 0700) == -1 ||
	    write_capath(p->capath, "capath", p->root.x) == -1 ||
	    write_capath(p->pin_capath, "pin-capath", p->good.x) == -1)
		return -1;
	if ((f = fopen(p->garbage, "w")) == NULL)
		return -1;
	fputs("this is not a certificate\n", f);
	if (fclose(f) != 0 || (f = fopen(p->garbage_key, "w")) == NULL)
		return -1;
	fputs("this is not a key\n", f);
	return (fclose(f) == 0 && chmod(p->garbage_key, 0600) == 0) ? 0 : -1;
}

const struct tp_pki *
tp_pki(void)
{
	const char *tmp = getenv("TMPDIR");

	if (pki_ready)
		return &pki;
	snprintf(pki.dir, sizeof(pki.dir), "%s/mt-tls-XXXXXX",
	    tmp != NULL ? tmp : "/tmp");
	if (mkdtemp(pki.dir) == NULL || make_cas(&pki) == -1 ||
	    make_leaves(&pki) == -1 || write_files(&pki) == -1) {
		fprintf(stderr, "cannot build the test PKI in %s\n", pki.dir);
		return NULL;
	}
	pki_ready = 1;
	return &pki;
}

static void
remove_tree(const char *dir)
{
	char sub[TP_PATH + 300];
	struct dirent *de;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		if (de->d_type == DT_DIR)
			remove_tree(sub);
		else
			unlink(sub);
	}
	closedir(d);
	rmdir(dir);
}

void
tp_pki_free(void)
{
	struct tp_cert *all[] = { &pki.root, &pki.inter, &pki.other_root,
	    &pki.other_inter, &pki.good, &pki.expired, &pki.notyet,
	    &pki.selfsigned, &pki.unknown, &pki.rsa1024, &pki.sha1, &pki.ip,
	    &pki.clientonly, &pki.wildcard, &pki.partial, &pki.client };
	size_t i;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		tp_cert_free(all[i]);
	if (pki.dir[0] != '\0')
		remove_tree(pki.dir);
	memset(&pki, 0, sizeof(pki));
	pki_ready = 0;
}
