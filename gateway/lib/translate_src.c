/*
 * translate_src.c - what the source formats share: decoding GBK and
 * GB18030 answers, JSON pointers (the selectors of the json and msgpack
 * formats), the outcome of choosing the subject's record, and the values
 * and strings a handle hands out through so_get.
 *
 * A format owns its syntax; what is written here once is what two or more
 * formats would otherwise each write, so that their answers and messages
 * cannot drift apart.
 */
#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate_impl.h"

int
src_decode(const char *enc, const void *in, size_t len, char **out, size_t *outlen,
    char *err, size_t errlen)
{
	iconv_t	 cd = (iconv_t)-1;
	char	*buf = NULL, *ip = (char *)(uintptr_t)in, *op;
	size_t	 il = len, ol, cap;
	int	 ret = -1;

	*out = NULL;
	*outlen = 0;
	/*
	 * A character grows at most threefold into UTF-8: one byte of GBK
	 * becomes up to three (CP936's 0x80 is the euro sign, U+20AC), two bytes
	 * of GBK or GB18030 at most three, and four bytes of GB18030 at most
	 * four.  The answer's size is bounded, so is this.
	 */
	if (len > LB_DEPT_BODY_MAX) {
		snprintf(err, errlen, "the answer is larger than %d bytes", LB_DEPT_BODY_MAX);
		return -1;
	}
	cap = len * 3 + 1;
	if ((buf = malloc(cap)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (strcmp(enc, "utf-8") == 0) {
		if (!utf8_valid(in, len)) {
			snprintf(err, errlen, "the answer is not valid UTF-8 (or holds a NUL)");
			goto done;
		}
		memcpy(buf, in, len);
		op = buf + len;
	} else {
		if ((cd = iconv_open("UTF-8", strcmp(enc, "gbk") == 0 ? "GBK" : "GB18030")) ==
		    (iconv_t)-1) {
			snprintf(err, errlen, "this system cannot decode %s", enc);
			goto done;
		}
		op = buf;
		ol = cap - 1;
		if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1) {
			snprintf(err, errlen, "the answer is not valid %s text%s", enc,
			    errno == EINVAL ? " (it ends inside a character)" : "");
			goto done;
		}
		if (memchr(buf, '\0', (size_t)(op - buf)) != NULL) {
			snprintf(err, errlen, "the answer holds a NUL character");
			goto done;
		}
	}
	*op = '\0';
	*outlen = (size_t)(op - buf);
	*out = buf;
	buf = NULL;
	ret = 0;
done:
	if (cd != (iconv_t)-1)
		iconv_close(cd);
	free(buf);
	return ret;
}

/*
 * JSON pointers.
 */

int
src_pointer_check(enum src_role role, const char *sel, const char *what, char *err,
    size_t errlen)
{
	const char	*p;

	if (sel[0] == '\0') {
		/* The whole answer may be the record list, never a value. */
		if (role == SRC_SEL_LIST)
			return 0;
		snprintf(err, errlen, "the empty %s names the whole answer", what);
		return -1;
	}
	if (sel[0] != '/') {
		snprintf(err, errlen, "a %s starts with \"/\"", what);
		return -1;
	}
	for (p = sel; *p != '\0'; p++) {
		if (*p == '~' && p[1] != '0' && p[1] != '1') {
			snprintf(err, errlen, "in a %s \"~\" is followed by 0 or 1 (RFC 6901)",
			    what);
			return -1;
		}
	}
	return 0;
}

/*
 * Reads the reference token at *p (just after its "/") into tok, unescaped,
 * and moves *p to the next "/" or the end.  -1 when an escape is not ~0 or
 * ~1 or the token does not fit.
 */
static int
src_pointer_token(const char **pp, char *tok, size_t toksz, size_t *len)
{
	const char	*p = *pp;
	size_t		 n = 0;

	while (*p != '\0' && *p != '/') {
		if (n + 1 >= toksz)
			return -1;
		if (*p == '~') {
			if (p[1] != '0' && p[1] != '1')
				return -1;
			tok[n++] = p[1] == '0' ? '~' : '/';
			p += 2;
		} else
			tok[n++] = *p++;
	}
	tok[n] = '\0';
	*len = n;
	*pp = p;
	return 0;
}

const void *
src_pointer_walk(const void *root, const char *ptr, src_pointer_step step)
{
	char		 tok[LB_SEL_MAX];
	const void	*node = root;
	const char	*p = ptr;
	size_t		 n;

	while (*p == '/' && node != NULL) {
		p++;
		if (src_pointer_token(&p, tok, sizeof(tok), &n) != 0)
			return NULL;
		node = step(node, tok, n);
	}
	return *p == '\0' ? node : NULL;
}

bool
src_pointer_index(const char *tok, size_t len, size_t *idx)
{
	size_t	i, v = 0;

	if (len == 0 || len > 9 || (len > 1 && tok[0] == '0'))
		return false;
	for (i = 0; i < len; i++) {
		if (tok[i] < '0' || tok[i] > '9')
			return false;
		v = v * 10 + (size_t)(tok[i] - '0');
	}
	*idx = v;
	return true;
}

/*
 * Records and values.
 */

enum lb_err
src_record_found(size_t nfound, char *err, size_t errlen)
{
	if (nfound == 0) {
		snprintf(err, errlen, "no record in the answer belongs to the requested subject");
		return LB_E_SUBJECT_MISMATCH;
	}
	if (nfound > 1) {
		snprintf(err, errlen, "%zu records in the answer belong to the requested subject",
		    nfound);
		return LB_E_DEPARTMENT_BAD_RESPONSE;
	}
	return LB_OK;
}

int
src_value_str(struct src_value *v, const char *s, size_t len)
{
	v->vl_type = SV_STR;
	v->vl_str = s;
	v->vl_len = len;
	return 1;
}

int
src_value_unusable(const char *kind, char *err, size_t errlen)
{
	snprintf(err, errlen, "the value is %s, not a string or an integer", kind);
	return -1;
}

int
src_strs_keep(struct src_strs *ss, char *s, size_t len, struct src_value *v, char *err,
    size_t errlen)
{
	if (ss->ss_n == SRC_MAX_STRS) {
		ss->ss_free(s);
		snprintf(err, errlen, "too many values in one answer");
		return -1;
	}
	ss->ss_str[ss->ss_n++] = s;
	return src_value_str(v, s, len);
}

void
src_strs_free(struct src_strs *ss)
{
	size_t	i;

	for (i = 0; i < ss->ss_n; i++)
		ss->ss_free(ss->ss_str[i]);
	ss->ss_n = 0;
}
