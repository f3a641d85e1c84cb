/*
 * translate_impl.h - what the translate files share and the rest of the
 * gateway does not see.  lianban.h declares the public side (struct
 * adapter, adapter_parse, translate); this header is the manual of the
 * parts behind it:
 *
 *   translate_spec.c      reads and checks an adapter spec (adapter_parse)
 *   translate.c           the template engine: compiles each item's
 *                         "mapping" and builds canonical documents (translate)
 *   translate_conv.c      the conversions of one value (trim, codes, dates, ...)
 *   translate_src.c       helpers the source formats share
 *   translate_<format>.c  one source format each, behind struct src_ops
 *
 * The engine knows documents and value conversions; a format only finds
 * the value a selector names in one answer.  A new format is one file
 * exporting a struct src_ops, plus its line in translate_spec.c's format
 * table.
 */
#ifndef TRANSLATE_IMPL_H
#define TRANSLATE_IMPL_H

#include "lianban.h"

/* Source formats: the interface every translate_<format>.c implements. */
enum src_role {
	SRC_SEL_FIELD = 1,	/* a field rule's "src" */
	SRC_SEL_LIST,		/* record.list */
	SRC_SEL_KEY		/* record.key */
};
enum src_type {
	SV_STR = 1,
	SV_INT
};
struct src_value {
	enum src_type	 vl_type;
	const char	*vl_str;	/* SV_STR: UTF-8, not NUL-terminated; owned by the handle */
	size_t		 vl_len;
	int64_t		 vl_int;	/* SV_INT */
};
struct src_ops {
	const char		*so_name;	/* the spec's "format" */
	const char *const	*so_encodings;	/* the "encoding" values it reads, NULL-ended */
	/* Checks one selector when a spec is compiled; err gets a sentence fragment. */
	int		(*so_check)(enum src_role, const char *sel, char *err, size_t errlen);
	/*
	 * Parses a non-empty answer of at most LB_DEPT_BODY_MAX bytes (the
	 * engine refuses others) in the adapter's encoding and, when
	 * ad_record is set, selects subject's record.  Returns LB_OK,
	 * LB_E_DEPARTMENT_BAD_RESPONSE, LB_E_SUBJECT_MISMATCH when no record
	 * belongs to subject, or LB_E_INTERNAL when memory runs out.  *h is
	 * released with so_close.
	 */
	enum lb_err	(*so_open)(const void *body, size_t len, const struct adapter *,
			    const char *subject, void **h, char *err, size_t errlen);
	/*
	 * Looks a field selector up in the (selected record of the) answer:
	 * 1 with *v set, valid until so_close; 0 when absent (null is absent);
	 * -1 when the value is neither a string nor an integer (err says what).
	 */
	int		(*so_get)(void *h, const char *sel, struct src_value *v, char *err,
			    size_t errlen);
	void		(*so_close)(void *h);
};

/* translate_json.c: JSON answers; selectors are JSON pointers (RFC 6901) */
extern const struct src_ops src_json_ops;
/* translate_xml.c: XML answers; selectors are XPath 1.0 with declared prefixes */
extern const struct src_ops src_xml_ops;
/* translate_csv.c: CSV answers (RFC 4180); selectors are column names */
extern const struct src_ops src_csv_ops;
/* translate_fixed.c: fixed-width records; selectors are "offset,length" in bytes */
extern const struct src_ops src_fixed_ops;
/* translate_msgpack.c: msgpack answers; selectors are paths like JSON pointers */
extern const struct src_ops src_msgpack_ops;

/* translate_src.c: helpers the source formats share */
/*
 * Decodes len bytes of text in enc ("utf-8", "gbk", "gb18030") into
 * malloc'ed, NUL-terminated UTF-8 in *out (the caller frees it).  -1 with a
 * sentence in err when the text is not valid in enc or holds a NUL.
 */
int		 src_decode(const char *enc, const void *in, size_t len, char **out,
		    size_t *outlen, char *err, size_t errlen);
/*
 * JSON pointers (RFC 6901), the selectors of the json and msgpack formats.
 * src_pointer_check is a format's so_check for them; what names the
 * selector in messages ("JSON pointer", "msgpack path").  The empty
 * pointer is allowed only as a record list (the whole answer).
 */
int		 src_pointer_check(enum src_role, const char *sel, const char *what,
		    char *err, size_t errlen);
/*
 * One step of a pointer walk: the child of node that the reference token
 * tok (unescaped, NUL-terminated, len bytes) names, or NULL.
 */
typedef const void *(*src_pointer_step)(const void *node, const char *tok, size_t len);
/*
 * Walks the pointer ptr from root: splits it into reference tokens,
 * unescapes "~1" to "/" and "~0" to "~", and hands each token to step.
 * Returns the node ptr names (root for the empty pointer), or NULL when a
 * step finds nothing or ptr is malformed.
 */
const void	*src_pointer_walk(const void *root, const char *ptr, src_pointer_step step);
/* An array index token: "0" or at most 9 digits without a leading zero. */
bool		 src_pointer_index(const char *tok, size_t len, size_t *idx);
/*
 * The outcome of record selection when nfound records have the subject's
 * key: LB_OK for exactly one; LB_E_SUBJECT_MISMATCH for none and
 * LB_E_DEPARTMENT_BAD_RESPONSE for several, with the sentence in err.
 */
enum lb_err	 src_record_found(size_t nfound, char *err, size_t errlen);
/* Sets v to the string s of len bytes (borrowed) and returns 1, so_get's "found". */
int		 src_value_str(struct src_value *v, const char *s, size_t len);
/* so_get's -1 for a value of another kind ("a boolean"), with the sentence in err. */
int		 src_value_unusable(const char *kind, char *err, size_t errlen);
/*
 * Strings a handle has handed out through so_get, freed with the handle.
 * A handle calls src_strs_free from its so_close; ss_free is how the
 * strings are freed (free, or xmlFree for strings of libxml2).
 */
#define SRC_MAX_STRS	256	/* strings one answer may hand out */
struct src_strs {
	char		*ss_str[SRC_MAX_STRS];
	size_t		 ss_n;
	void		(*ss_free)(void *);
};
/*
 * Takes s (len bytes) into strs and points v at it: 1, or -1 with err set
 * when strs is full.  s belongs to strs from the call on, also on failure.
 */
int		 src_strs_keep(struct src_strs *, char *s, size_t len, struct src_value *v,
		    char *err, size_t errlen);
void		 src_strs_free(struct src_strs *);

/* translate_conv.c: the conversions of one field rule (docs/formats.md) */
enum conv_date {
	CONV_DATE_NONE = 0,
	CONV_DATE_YMD,		/* YYYYMMDD */
	CONV_DATE_DASH,		/* YYYY-MM-DD */
	CONV_DATE_SLASH,	/* YYYY/MM/DD, also YYYY/M/D */
	CONV_DATE_CJK		/* YYYY年MM月DD日, also YYYY年M月D日 */
};
/* One entry of a code table; both strings are NUL-terminated UTF-8. */
struct conv_code {
	const char	*cd_code;
	size_t		 cd_code_len;
	const char	*cd_value;
};
/*
 * What a field rule does to a value, in this order: trim, code table
 * (with co_default for codes not in it), date, integer.  The strings are
 * owned by whoever compiled the rule (translate.c: the mapping's zone).
 */
struct conv {
	bool			 co_trim;
	bool			 co_as_int;
	enum conv_date		 co_date;
	const struct conv_code	*co_codes;
	uint32_t		 co_ncodes;
	const char		*co_default;
};
/* Valid UTF-8 without control characters: safe to quote in messages. */
bool		 conv_text_ok(const char *s, size_t n);
/* The date format a spec names ("YYYY/MM/DD"); false for an unknown name. */
bool		 conv_date_named(const char *name, size_t len, enum conv_date *f);
const char	*conv_date_name(enum conv_date);
/* Parses s in format f and writes YYYY-MM-DD into out[11]; false when s is no valid date. */
bool		 conv_date_iso(enum conv_date f, const char *s, size_t n, char out[11]);
/*
 * Runs the conversions of cv on one source value: to text (integers
 * become decimal strings), trim, code table, date, integer.  Returns 1
 * with *out set (its string copied into z), 0 when the value is empty, -1
 * with a sentence fragment in why.  The fragments never quote the value:
 * answers carry personal data.
 */
int		 conv_value(const struct conv *cv, const struct src_value *in, msgpack_zone *z,
		    msgpack_object *out, char *why, size_t whylen);

/* translate_spec.c: reading an adapter spec */
/* Writes the message into err and returns -1. */
int		 spec_err(char *err, size_t errlen, const char *fmt, ...)
		    __attribute__((format(printf, 3, 4)));
/*
 * A spec string fit to quote in a message, in buf: at most 48 bytes, cut on
 * a character boundary, and only when it is printable UTF-8, so that error
 * messages stay valid UTF-8 whatever the spec holds.
 */
const char	*spec_show(const msgpack_object *o, char *buf, size_t bufsz);
/* True when k is a string in the NULL-ended list. */
bool		 spec_key_in(const char *const *list, const msgpack_object *k);
/* True when entry i of map o has the key of an earlier entry. */
bool		 spec_key_repeats(const msgpack_object *o, uint32_t i);
/* Item types and document keys: [a-z][a-z0-9_]*, shorter than max. */
bool		 spec_name_ok(const msgpack_object *o, size_t max);
/*
 * A selector of role for the format ops: printable UTF-8 shorter than
 * LB_SEL_MAX, then whatever the format's so_check requires.  -1 with a
 * sentence fragment in why.
 */
int		 spec_selector_check(const struct src_ops *ops, enum src_role role,
		    const msgpack_object *o, char *why, size_t whylen);
/* The index of item in ad_items, -1 when the adapter does not serve it. */
int		 adapter_item(const struct adapter *, const char *item);

/* translate.c: the template engine */
/*
 * Compiles "mapping" (m) into one template per item of ad, checked against
 * the document contract, for answers read with ops.  ad->ad_map is set
 * (also on failure, for adapter_free to release); its templates are in the
 * order of ad_items.  -1 with a sentence in err.
 */
int		 mapping_compile(struct adapter *ad, const msgpack_object *m,
		    const struct src_ops *ops, char *err, size_t errlen);
void		 mapping_free(struct mapping *);

#endif
