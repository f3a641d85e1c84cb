/*
 * translate_csv.c - the CSV source format (RFC 4180): the first row names
 * the columns, a selector is a column name, and the record is the row
 * whose key column equals the subject (or the only data row when the spec
 * has no record selector).
 *
 * The answer is first decoded to UTF-8 from the adapter's encoding, then
 * split in place: quoted fields may hold the delimiter, doubled quotes and
 * line breaks; CRLF and LF both end a row; a final line break is optional.
 * A quote inside an unquoted field, text after a closing quote, an
 * unterminated quote, or a row with another number of fields than the
 * header makes the answer bad.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate_impl.h"

#define CSV_MAX_COLS	256

struct csv_field {
	const char	*cf_ptr;	/* into cv_text, unquoted in place */
	size_t		 cf_len;
};

struct csv_src {
	char		*cv_text;	/* the decoded answer, rewritten by the parser */
	struct csv_field cv_head[CSV_MAX_COLS];
	struct csv_field cv_rec[CSV_MAX_COLS];
	size_t		 cv_ncols;
};

static const char *const csv_encodings[] = { "utf-8", "gbk", "gb18030", NULL };

static int
csv_src_check(enum src_role role, const char *sel, char *err, size_t errlen)
{
	if (role == SRC_SEL_LIST) {
		if (sel[0] == '\0')
			return 0;
		snprintf(err, errlen, "a CSV answer is one list of rows; leave \"list\" out");
		return -1;
	}
	if (sel[0] == '\0') {
		snprintf(err, errlen, "a column name may not be empty");
		return -1;
	}
	return 0;
}

/*
 * Reads one row starting at *pp into f (at most CSV_MAX_COLS fields),
 * unquoting in place.  Returns the number of fields, or -1 with err set.
 * *pp moves past the row's line break.
 */
static int
csv_row(char **pp, char *end, char delim, struct csv_field *f, size_t row, char *err,
    size_t errlen)
{
	char	*p = *pp, *w;
	size_t	 n = 0;

	for (;;) {
		if (n == CSV_MAX_COLS) {
			snprintf(err, errlen, "row %zu has more than %d fields", row,
			    CSV_MAX_COLS);
			return -1;
		}
		if (p < end && *p == '"') {
			/* Quoted: copy down over doubled quotes. */
			w = ++p;
			f[n].cf_ptr = w;
			for (;;) {
				if (p == end) {
					snprintf(err, errlen, "row %zu ends inside a quoted field",
					    row);
					return -1;
				}
				if (*p == '"') {
					if (p + 1 < end && p[1] == '"') {
						*w++ = '"';
						p += 2;
						continue;
					}
					p++;
					break;
				}
				*w++ = *p++;
			}
			f[n].cf_len = (size_t)(w - f[n].cf_ptr);
			if (p < end && *p != delim && *p != '\r' && *p != '\n') {
				snprintf(err, errlen, "row %zu has text after a closing quote", row);
				return -1;
			}
		} else {
			f[n].cf_ptr = p;
			while (p < end && *p != delim && *p != '\r' && *p != '\n') {
				if (*p == '"') {
					snprintf(err, errlen, "row %zu has a quote inside an "
					    "unquoted field", row);
					return -1;
				}
				p++;
			}
			f[n].cf_len = (size_t)(p - f[n].cf_ptr);
		}
		n++;
		if (p < end && *p == delim) {
			p++;
			continue;
		}
		break;
	}
	if (p < end && *p == '\r') {
		if (p + 1 == end || p[1] != '\n') {
			snprintf(err, errlen, "row %zu ends with a bare carriage return", row);
			return -1;
		}
		p++;
	}
	if (p < end && *p == '\n')
		p++;
	*pp = p;
	return (int)n;
}

static int
csv_col(const struct csv_src *cs, const char *name)
{
	size_t	i, n = strlen(name);

	for (i = 0; i < cs->cv_ncols; i++)
		if (cs->cv_head[i].cf_len == n && memcmp(cs->cv_head[i].cf_ptr, name, n) == 0)
			return (int)i;
	return -1;
}

static void
csv_src_close(void *h)
{
	struct csv_src	*cs = h;

	if (cs == NULL)
		return;
	free(cs->cv_text);
	free(cs);
}

static enum lb_err
csv_src_open(const void *body, size_t len, const struct adapter *ad, const char *subject,
    void **hp, char *err, size_t errlen)
{
	struct csv_src		*cs = NULL;
	struct csv_field	 row[CSV_MAX_COLS];
	char			*p, *end;
	size_t			 tlen, nrow = 1, nfound = 0, i, j;
	int			 n, key = -1;
	enum lb_err		 e = LB_E_DEPARTMENT_BAD_RESPONSE;

	*hp = NULL;
	if ((cs = calloc(1, sizeof(*cs))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return LB_E_INTERNAL;
	}
	if (src_decode(ad->ad_encoding, body, len, &cs->cv_text, &tlen, err, errlen) != 0)
		goto done;
	p = cs->cv_text;
	end = p + tlen;
	if (tlen >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3;
	if ((n = csv_row(&p, end, ad->ad_delim, cs->cv_head, nrow, err, errlen)) < 0)
		goto done;
	cs->cv_ncols = (size_t)n;
	for (i = 0; i < cs->cv_ncols; i++)
		for (j = 0; j < i; j++)
			if (cs->cv_head[i].cf_len == cs->cv_head[j].cf_len &&
			    memcmp(cs->cv_head[i].cf_ptr, cs->cv_head[j].cf_ptr,
			    cs->cv_head[i].cf_len) == 0) {
				snprintf(err, errlen, "the header names column %zu twice", j + 1);
				goto done;
			}
	if (ad->ad_record.rs_set && (key = csv_col(cs, ad->ad_record.rs_key)) < 0) {
		snprintf(err, errlen, "the header has no key column \"%s\"",
		    ad->ad_record.rs_key);
		goto done;
	}
	while (p < end) {
		nrow++;
		if ((n = csv_row(&p, end, ad->ad_delim, row, nrow, err, errlen)) < 0)
			goto done;
		/* An empty line (one empty field) is no record. */
		if (n == 1 && row[0].cf_len == 0 && cs->cv_ncols > 1)
			continue;
		if ((size_t)n != cs->cv_ncols) {
			snprintf(err, errlen, "row %zu has %d fields, the header %zu", nrow, n,
			    cs->cv_ncols);
			goto done;
		}
		if (key >= 0 && (row[key].cf_len != strlen(subject) ||
		    memcmp(row[key].cf_ptr, subject, row[key].cf_len) != 0))
			continue;
		if (++nfound == 1)
			memcpy(cs->cv_rec, row, sizeof(row[0]) * (size_t)n);
	}
	if (key >= 0) {
		if ((e = src_record_found(nfound, err, errlen)) != LB_OK)
			goto done;
	} else if (nfound != 1) {
		if (nfound == 0)
			snprintf(err, errlen, "the answer has a header but no data row");
		else
			snprintf(err, errlen, "the answer has %zu data rows and the spec no "
			    "\"record\" to choose one", nfound);
		goto done;
	}
	*hp = cs;
	cs = NULL;
	e = LB_OK;
done:
	csv_src_close(cs);
	return e;
}

static int
csv_src_get(void *h, const char *sel, struct src_value *v, char *err, size_t errlen)
{
	struct csv_src	*cs = h;
	int		 c;

	(void)err;
	(void)errlen;
	if ((c = csv_col(cs, sel)) < 0)
		return 0;
	return src_value_str(v, cs->cv_rec[c].cf_ptr, cs->cv_rec[c].cf_len);
}

const struct src_ops src_csv_ops = {
	.so_name = "csv",
	.so_encodings = csv_encodings,
	.so_check = csv_src_check,
	.so_open = csv_src_open,
	.so_get = csv_src_get,
	.so_close = csv_src_close,
};
