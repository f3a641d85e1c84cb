/*
 * translate_fixed.c - fixed-width records, the format of mainframe-era
 * registers: one record per line, each field at a byte offset with a byte
 * length, both counted in the department's encoding (GBK, GB18030 or
 * UTF-8), as their record layouts are written.  A selector is
 * "offset,length" (decimal, offset from 0); the record selector's key is
 * the field that holds the resident ID.
 *
 * The whole answer must decode in the adapter's encoding; each field is
 * then cut from the raw record and decoded on its own, so a field boundary
 * that splits a character makes the answer bad rather than producing
 * garbage.  Fields are padded with spaces; use "trim" in the rule.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate_impl.h"

#define FIXED_REC_MAX	65536	/* longest record, in bytes */

struct fixed_src {
	const char	*fs_rec;	/* the subject's record, in fs_body */
	size_t		 fs_len;
	char		*fs_body;	/* a copy of the answer */
	const char	*fs_enc;
	struct src_strs	 fs_strs;	/* decoded fields of so_get */
};

static const char *const fixed_encodings[] = { "gbk", "gb18030", "utf-8", NULL };

/* Parses "offset,length"; -1 unless both are decimal and the field fits a record. */
static int
fixed_sel(const char *sel, size_t *off, size_t *len)
{
	char		*end;
	unsigned long	 o, l;

	if (sel[0] < '0' || sel[0] > '9')
		return -1;
	o = strtoul(sel, &end, 10);
	if (*end != ',' || end[1] < '0' || end[1] > '9')
		return -1;
	l = strtoul(end + 1, &end, 10);
	if (*end != '\0' || l == 0 || o >= FIXED_REC_MAX || l > FIXED_REC_MAX - o)
		return -1;
	*off = o;
	*len = l;
	return 0;
}

static int
fixed_src_check(enum src_role role, const char *sel, char *err, size_t errlen)
{
	size_t	o, l;

	if (role == SRC_SEL_LIST) {
		if (sel[0] == '\0')
			return 0;
		snprintf(err, errlen, "fixed-width records are one per line; leave \"list\" "
		    "out");
		return -1;
	}
	if (fixed_sel(sel, &o, &l) != 0) {
		snprintf(err, errlen, "a fixed-width selector is \"offset,length\" in bytes "
		    "(decimal, length at least 1, ending before byte %d)", FIXED_REC_MAX);
		return -1;
	}
	return 0;
}

/*
 * Cuts a field from a record and decodes it: 1 with *s (malloc'ed); -1
 * with err set when the record is too short for the field (a truncated
 * record) or its bytes do not decode.
 */
static int
fixed_field(const char *enc, const char *rec, size_t reclen, size_t off, size_t len,
    char **s, size_t *slen, char *err, size_t errlen)
{
	if (off + len > reclen) {
		snprintf(err, errlen, "the record is %zu bytes long, too short for bytes %zu to "
		    "%zu (truncated?)", reclen, off, off + len);
		return -1;
	}
	if (src_decode(enc, rec + off, len, s, slen, err, errlen) != 0) {
		snprintf(err, errlen, "bytes %zu to %zu are not valid %s text (a field "
		    "boundary may split a character)", off, off + len, enc);
		return -1;
	}
	return 1;
}

/* The next line of [p, end): its start and length without CR LF; NULL at the end. */
static const char *
fixed_line(const char **pp, const char *end, size_t *len)
{
	const char	*p = *pp, *nl;

	if (p >= end)
		return NULL;
	if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
		nl = end;
	*len = (size_t)(nl - p);
	if (*len > 0 && p[*len - 1] == '\r')
		(*len)--;
	*pp = nl < end ? nl + 1 : end;
	return p;
}

static void
fixed_src_close(void *h)
{
	struct fixed_src	*fs = h;

	if (fs == NULL)
		return;
	src_strs_free(&fs->fs_strs);
	free(fs->fs_body);
	free(fs);
}

static bool
fixed_blank(const char *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t')
			return false;
	return true;
}

static enum lb_err
fixed_src_open(const void *body, size_t len, const struct adapter *ad, const char *subject,
    void **hp, char *err, size_t errlen)
{
	struct fixed_src	*fs = NULL;
	const char		*p, *end, *line, *found = NULL;
	char			*all = NULL, *k = NULL;
	size_t			 alen, llen, flen = 0, koff = 0, klen = 0, klen8, nfound = 0;
	size_t			 nline = 0, nrec = 0;
	enum lb_err		 e = LB_E_DEPARTMENT_BAD_RESPONSE;

	*hp = NULL;
	/* The whole answer must be text in the adapter's encoding. */
	if (src_decode(ad->ad_encoding, body, len, &all, &alen, err, errlen) != 0)
		goto done;
	if ((fs = calloc(1, sizeof(*fs))) == NULL || (fs->fs_body = malloc(len)) == NULL) {
		snprintf(err, errlen, "out of memory");
		e = LB_E_INTERNAL;
		goto done;
	}
	fs->fs_strs.ss_free = free;
	memcpy(fs->fs_body, body, len);
	fs->fs_enc = ad->ad_encoding;
	if (ad->ad_record.rs_set)
		(void)fixed_sel(ad->ad_record.rs_key, &koff, &klen);
	p = fs->fs_body;
	end = p + len;
	while ((line = fixed_line(&p, end, &llen)) != NULL) {
		nline++;
		if (fixed_blank(line, llen))
			continue;
		if (llen > FIXED_REC_MAX) {
			snprintf(err, errlen, "record %zu is longer than %d bytes", nline,
			    FIXED_REC_MAX);
			goto done;
		}
		nrec++;
		if (ad->ad_record.rs_set) {
			if (koff + klen > llen) {
				snprintf(err, errlen, "record %zu is %zu bytes long, too short for "
				    "its key (truncated?)", nline, llen);
				goto done;
			}
			if (fixed_field(fs->fs_enc, line, llen, koff, klen, &k, &klen8, err,
			    errlen) < 0)
				goto done;
			/* Keys are padded: compare without surrounding spaces. */
			while (klen8 > 0 && k[klen8 - 1] == ' ')
				klen8--;
			{
				const char	*ks = k;

				while (klen8 > 0 && *ks == ' ') {
					ks++;
					klen8--;
				}
				if (klen8 == strlen(subject) && memcmp(ks, subject, klen8) == 0) {
					found = line;
					flen = llen;
					nfound++;
				}
			}
			free(k);
			k = NULL;
		} else {
			found = line;
			flen = llen;
			nfound++;
		}
	}
	/* An answer without records is bad, not about someone else. */
	if (nrec == 0) {
		snprintf(err, errlen, "the answer holds no record");
		goto done;
	}
	if (ad->ad_record.rs_set) {
		if ((e = src_record_found(nfound, err, errlen)) != LB_OK)
			goto done;
	} else if (nfound > 1) {
		snprintf(err, errlen, "the answer has %zu records and the spec no \"record\" to "
		    "choose one", nfound);
		goto done;
	}
	fs->fs_rec = found;
	fs->fs_len = flen;
	*hp = fs;
	fs = NULL;
	e = LB_OK;
done:
	free(all);
	free(k);
	fixed_src_close(fs);
	return e;
}

static int
fixed_src_get(void *h, const char *sel, struct src_value *v, char *err, size_t errlen)
{
	struct fixed_src	*fs = h;
	size_t			 off, len, slen;
	char			*s;

	if (fixed_sel(sel, &off, &len) != 0) {
		snprintf(err, errlen, "not an \"offset,length\" selector");
		return -1;
	}
	if (fixed_field(fs->fs_enc, fs->fs_rec, fs->fs_len, off, len, &s, &slen, err,
	    errlen) < 0)
		return -1;
	return src_strs_keep(&fs->fs_strs, s, slen, v, err, errlen);
}

const struct src_ops src_fixed_ops = {
	.so_name = "fixed",
	.so_encodings = fixed_encodings,
	.so_check = fixed_src_check,
	.so_open = fixed_src_open,
	.so_get = fixed_src_get,
	.so_close = fixed_src_close,
};
