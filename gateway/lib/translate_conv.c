/*
 * translate_conv.c - the conversions a field rule applies to one value of
 * an answer (docs/formats.md, "Field rules"): integers become text, then
 * trim, code table, date and integer, in this order; and the text check
 * that every string reaching a document passes.
 *
 * Nothing here knows templates or source formats: a rule's conversions
 * are a struct conv, compiled by translate.c, and a value is a struct
 * src_value, found by a format.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "translate_impl.h"

static const struct {
	const char	*name;
	enum conv_date	 fmt;
} conv_dates[] = {
	{ "YYYYMMDD",			CONV_DATE_YMD },
	{ "YYYY-MM-DD",			CONV_DATE_DASH },
	{ "YYYY/MM/DD",			CONV_DATE_SLASH },
	{ "YYYY\u5e74MM\u6708DD\u65e5",	CONV_DATE_CJK },
};

bool
conv_text_ok(const char *s, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return utf8_valid(s, n);
}

/*
 * Dates.
 */

static bool
conv_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool
conv_calendar_ok(int y, int m, int d)
{
	static const int	mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1)
		return false;
	return d <= mdays[m - 1] + (m == 2 && conv_leap(y));
}

/* Reads min to max ASCII digits at s[*i]. */
static bool
conv_digits(const char *s, size_t n, size_t *i, size_t min, size_t max, int *v)
{
	size_t	k = 0;

	*v = 0;
	while (*i < n && k < max && s[*i] >= '0' && s[*i] <= '9') {
		*v = *v * 10 + (s[*i] - '0');
		(*i)++;
		k++;
	}
	return k >= min;
}

static bool
conv_lit(const char *s, size_t n, size_t *i, const char *l)
{
	size_t	ll = strlen(l);

	if (n - *i < ll || memcmp(s + *i, l, ll) != 0)
		return false;
	*i += ll;
	return true;
}

bool
conv_date_named(const char *name, size_t len, enum conv_date *f)
{
	size_t	i;

	for (i = 0; i < sizeof(conv_dates) / sizeof(conv_dates[0]); i++)
		if (strlen(conv_dates[i].name) == len &&
		    memcmp(conv_dates[i].name, name, len) == 0) {
			*f = conv_dates[i].fmt;
			return true;
		}
	return false;
}

const char *
conv_date_name(enum conv_date f)
{
	size_t	i;

	for (i = 0; i < sizeof(conv_dates) / sizeof(conv_dates[0]); i++)
		if (conv_dates[i].fmt == f)
			return conv_dates[i].name;
	return "?";
}

bool
conv_date_iso(enum conv_date f, const char *s, size_t n, char out[11])
{
	size_t	i = 0;
	int	y, m, d;
	bool	ok;

	switch (f) {
	case CONV_DATE_YMD:
		ok = conv_digits(s, n, &i, 4, 4, &y) && conv_digits(s, n, &i, 2, 2, &m) &&
		    conv_digits(s, n, &i, 2, 2, &d);
		break;
	case CONV_DATE_DASH:
		ok = conv_digits(s, n, &i, 4, 4, &y) && conv_lit(s, n, &i, "-") &&
		    conv_digits(s, n, &i, 2, 2, &m) && conv_lit(s, n, &i, "-") &&
		    conv_digits(s, n, &i, 2, 2, &d);
		break;
	case CONV_DATE_SLASH:
		ok = conv_digits(s, n, &i, 4, 4, &y) && conv_lit(s, n, &i, "/") &&
		    conv_digits(s, n, &i, 1, 2, &m) && conv_lit(s, n, &i, "/") &&
		    conv_digits(s, n, &i, 1, 2, &d);
		break;
	case CONV_DATE_CJK:
		ok = conv_digits(s, n, &i, 4, 4, &y) && conv_lit(s, n, &i, "\u5e74") &&
		    conv_digits(s, n, &i, 1, 2, &m) && conv_lit(s, n, &i, "\u6708") &&
		    conv_digits(s, n, &i, 1, 2, &d) && conv_lit(s, n, &i, "\u65e5");
		break;
	default:
		return false;
	}
	if (!ok || i != n || !conv_calendar_ok(y, m, d))
		return false;
	out[0] = (char)('0' + y / 1000);
	out[1] = (char)('0' + y / 100 % 10);
	out[2] = (char)('0' + y / 10 % 10);
	out[3] = (char)('0' + y % 10);
	out[4] = '-';
	out[5] = (char)('0' + m / 10);
	out[6] = (char)('0' + m % 10);
	out[7] = '-';
	out[8] = (char)('0' + d / 10);
	out[9] = (char)('0' + d % 10);
	out[10] = '\0';
	return true;
}

/*
 * Integers and white space.
 */

/* A decimal integer: optional "-", digits, within int64. */
static bool
conv_decimal(const char *s, size_t n, int64_t *v)
{
	uint64_t	acc = 0, lim;
	size_t		i = 0;
	bool		neg = false;

	if (n > 0 && s[0] == '-') {
		neg = true;
		i = 1;
	}
	if (i == n)
		return false;
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		if (acc > (lim - (uint64_t)(s[i] - '0')) / 10)
			return false;
		acc = acc * 10 + (uint64_t)(s[i] - '0');
	}
	if (neg)
		*v = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
	else
		*v = (int64_t)acc;
	return true;
}

static bool
conv_ascii_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/*
 * Strips ASCII white space and U+3000 IDEOGRAPHIC SPACE (full-width space,
 * common in Chinese records) from both ends.  s must be valid UTF-8, where
 * ASCII bytes never occur inside a multi-byte character.
 */
static void
conv_trim(const char **s, size_t *n)
{
	static const char	ideo[] = "\xe3\x80\x80";
	const char		*p = *s;
	size_t			 len = *n;

	for (;;) {
		if (len >= 1 && conv_ascii_space(p[0])) {
			p++;
			len--;
		} else if (len >= 3 && memcmp(p, ideo, 3) == 0) {
			p += 3;
			len -= 3;
		} else
			break;
	}
	for (;;) {
		if (len >= 1 && conv_ascii_space(p[len - 1]))
			len--;
		else if (len >= 3 && memcmp(p + len - 3, ideo, 3) == 0)
			len -= 3;
		else
			break;
	}
	*s = p;
	*n = len;
}

/* Replaces *s by its entry in the code table, or by the default; -1 when neither. */
static int
conv_code(const struct conv *cv, const char **s, size_t *len)
{
	uint32_t	i;

	for (i = 0; i < cv->co_ncodes; i++)
		if (cv->co_codes[i].cd_code_len == *len &&
		    memcmp(cv->co_codes[i].cd_code, *s, *len) == 0)
			break;
	if (i < cv->co_ncodes)
		*s = cv->co_codes[i].cd_value;
	else if (cv->co_default != NULL)
		*s = cv->co_default;
	else
		return -1;
	*len = strlen(*s);
	return 0;
}

int
conv_value(const struct conv *cv, const struct src_value *in, msgpack_zone *z,
    msgpack_object *out, char *why, size_t whylen)
{
	char		 num[24], date[11];
	const char	*s;
	size_t		 len;
	int64_t		 iv;

	if (in->vl_type == SV_INT) {
		if (cv->co_as_int && cv->co_ncodes == 0 && cv->co_date == CONV_DATE_NONE) {
			*out = mpk_int(in->vl_int);
			return 1;
		}
		len = (size_t)snprintf(num, sizeof(num), "%" PRId64, in->vl_int);
		s = num;
	} else if (in->vl_type == SV_STR && in->vl_str != NULL) {
		s = in->vl_str;
		len = in->vl_len;
	} else {
		snprintf(why, whylen, "the value is neither a string nor an integer");
		return -1;
	}
	if (!utf8_valid(s, len)) {
		snprintf(why, whylen, "the value is not valid UTF-8 or holds a NUL character");
		return -1;
	}
	if (cv->co_trim)
		conv_trim(&s, &len);
	if (len == 0)
		return 0;
	if (cv->co_ncodes > 0 && conv_code(cv, &s, &len) != 0) {
		snprintf(why, whylen, "the value is not in the code table "
		    "and the rule has no \"default\"");
		return -1;
	}
	if (cv->co_date != CONV_DATE_NONE) {
		if (!conv_date_iso(cv->co_date, s, len, date)) {
			snprintf(why, whylen, "the value is not a valid date in the format %s",
			    conv_date_name(cv->co_date));
			return -1;
		}
		s = date;
		len = 10;
	}
	if (cv->co_as_int) {
		if (!conv_decimal(s, len, &iv)) {
			snprintf(why, whylen, "the value is not a decimal integer within 64 bits");
			return -1;
		}
		*out = mpk_int(iv);
		return 1;
	}
	*out = mpk_strdup(z, s, len);
	return 1;
}
