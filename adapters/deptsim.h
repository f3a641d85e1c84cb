/*
 * deptsim.h - what the files of the department simulator share: the shape
 * of an answer and of a route, and the helpers every department's handler
 * uses.  deptsim.c is the server and serves the families' records;
 * deptsim_biz.c serves the records of enterprises and of assisted
 * applications, from the same data file.
 */
#ifndef DEPTSIM_H
#define DEPTSIM_H

#include <stddef.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <jansson.h>

#include "lianban.h"

/* An answer under construction; rp_body is owned by the reply. */
struct reply {
	int		 rp_status;
	const char	*rp_type;
	struct evbuffer	*rp_body;
};

struct sim;

struct route {
	const char	*ro_path;	/* below /DEPT, e.g. "/birth-medical-certificates" */
	enum evhttp_cmd_type ro_method;
	void		(*ro_handler)(struct sim *, const struct evkeyvalq *query,
			    struct reply *);
};

/* deptsim.c */
/* The loaded data file; owned by the simulator. */
json_t		*sim_data(struct sim *);
/* YYYY-MM-DD, a real calendar day. */
int		 date_valid(const char *);
/* Non-empty and at most SIM_TEXT_MAX bytes. */
int		 text_ok(const char *);
/* The departments' common error shape: {"code": status, "message": text}. */
void		 reply_error(struct reply *, int status, const char *message);
/* Sets the answer to the compact JSON text of doc; takes the reference to doc. */
void		 reply_json(struct reply *, int status, json_t *doc);
/* Takes the body built so far as a 200 answer of the given type. */
void		 reply_ok(struct reply *, const char *type);
/* A 500: the data file's record lacks a field the answer needs. */
void		 reply_bad_data(struct reply *);
/* reply_bad_data when bad is set, else reply_ok with type. */
void		 reply_done(struct reply *, int bad, const char *type);
/*
 * Takes b (the answer so far, UTF-8; the caller keeps it) converted to
 * encoding enc as the body, then reply_done.
 */
void		 reply_enc(struct reply *, struct evbuffer *b, int bad, const char *enc,
		    const char *type);
/*
 * The text field key of o; a missing, empty or overlong one sets *bad and
 * gives "".  need_date rewrites a YYYY-MM-DD field with separator sep.
 */
const char	*need(json_t *o, const char *key, int *bad);
const char	*need_date(json_t *o, const char *key, const char *sep, char *out,
		    size_t outsz, int *bad);
/* len bytes of UTF-8 in encoding enc (iconv name); *out is malloc'ed. */
int		 enc_convert(const char *enc, const char *in, size_t len, char **out,
		    size_t *outlen);
/* s in encoding enc, padded with spaces to width bytes; -1 when it does not fit. */
int		 fixed_put_enc(struct evbuffer *, const char *enc, const char *s, size_t width);
/* <tag>text</tag>, text escaped. */
void		 xml_elem(struct evbuffer *, const char *tag, const char *text);
/* s as one quoted CSV field, then sep ("," or "\r\n"). */
void		 csv_field(struct evbuffer *, const char *s, const char *sep);

/* deptsim_biz.c */
/*
 * Checks the data file's "enterprises", "delegations" and "disabilities"
 * (all optional); -1 with a sentence in err.
 */
int		 biz_data_check(json_t *data, char *err, size_t errlen);
void		 biz_samr_business_licenses(struct sim *, const struct evkeyvalq *,
		    struct reply *);
void		 biz_tax_registrations(struct sim *, const struct evkeyvalq *, struct reply *);
void		 biz_hrss_employer_accounts(struct sim *, const struct evkeyvalq *,
		    struct reply *);
void		 biz_hpf_employer_accounts(struct sim *, const struct evkeyvalq *,
		    struct reply *);
void		 biz_mca_assisted_applications(struct sim *, const struct evkeyvalq *,
		    struct reply *);
void		 biz_cdpf_disability_certificates(struct sim *, const struct evkeyvalq *,
		    struct reply *);

#endif /* DEPTSIM_H */
