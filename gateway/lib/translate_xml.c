/*
 * translate_xml.c - the XML source format: selectors are XPath 1.0
 * expressions, with the namespace prefixes the spec declares in
 * "namespaces".
 *
 * A department answer is untrusted input, so the parser runs with the
 * network off (XML_PARSE_NONET), loads no external DTD or entity, does not
 * substitute entities, keeps libxml2's default limits (no XML_PARSE_HUGE)
 * and a document with a DOCTYPE is refused outright: a certificate has no
 * use for one, and entity tricks all start there.  libxml2 messages are
 * silenced; they may quote the answer.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "translate_impl.h"

#define XML_PARSE_OPTS	(XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | \
			 XML_PARSE_NOCDATA)

struct xml_src {
	xmlDocPtr		 xs_doc;
	xmlXPathContextPtr	 xs_ctx;
	xmlNodePtr		 xs_base;	/* the subject's record, or the root element */
	struct src_strs		 xs_strs;	/* xmlChar strings of so_get */
};

static const char *const xml_encodings[] = { "utf-8", "gbk", "gb18030", NULL };
static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

/* Generic error callback that drops libxml2's messages. */
static void
xml_quiet(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

static void
xml_init(void)
{
	xmlInitParser();
}

static void
xml_silence(void)
{
	pthread_once(&xml_once, xml_init);
	/* The handler is per thread in libxml2; set it on every thread that parses. */
	xmlSetGenericErrorFunc(NULL, xml_quiet);
}

static int
xml_src_check(enum src_role role, const char *sel, char *err, size_t errlen)
{
	xmlXPathCompExprPtr	c;

	xml_silence();
	if (sel[0] == '\0') {
		if (role == SRC_SEL_LIST)
			return 0;
		snprintf(err, errlen, "an XPath selector may not be empty");
		return -1;
	}
	if ((c = xmlXPathCompile((const xmlChar *)sel)) == NULL) {
		snprintf(err, errlen, "it is not a valid XPath 1.0 expression");
		return -1;
	}
	xmlXPathFreeCompExpr(c);
	return 0;
}

/* Evaluates sel with node as the context node; NULL on an XPath error. */
static xmlXPathObjectPtr
xml_eval(struct xml_src *xs, xmlNodePtr node, const char *sel)
{
	xs->xs_ctx->node = node;
	return xmlXPathEvalExpression((const xmlChar *)sel, xs->xs_ctx);
}

/*
 * The string value of an XPath result: 1 with *s (malloc'ed by libxml2),
 * 0 when it is an empty node set, -1 when it names several nodes.
 */
static int
xml_string(xmlXPathObjectPtr r, xmlChar **s)
{
	*s = NULL;
	if (r->type == XPATH_NODESET) {
		if (r->nodesetval == NULL || r->nodesetval->nodeNr == 0)
			return 0;
		if (r->nodesetval->nodeNr > 1)
			return -1;
	}
	*s = xmlXPathCastToString(r);
	return *s != NULL ? 1 : -1;
}

static enum lb_err
xml_select(struct xml_src *xs, const struct src_record *rs, const char *subject,
    char *err, size_t errlen)
{
	xmlXPathObjectPtr	 list = NULL, k;
	xmlNodePtr		 found = NULL;
	xmlChar			*s;
	size_t			 nfound = 0;
	int			 i, r;
	enum lb_err		 e = LB_E_DEPARTMENT_BAD_RESPONSE;

	list = xml_eval(xs, xs->xs_base, rs->rs_list[0] != '\0' ? rs->rs_list : "*");
	if (list == NULL || list->type != XPATH_NODESET) {
		snprintf(err, errlen, "the record list \"%s\" is not a node set in the answer",
		    rs->rs_list);
		goto done;
	}
	for (i = 0; list->nodesetval != NULL && i < list->nodesetval->nodeNr; i++) {
		if ((k = xml_eval(xs, list->nodesetval->nodeTab[i], rs->rs_key)) == NULL)
			continue;
		r = xml_string(k, &s);
		if (r == 1 && strcmp((const char *)s, subject) == 0) {
			found = list->nodesetval->nodeTab[i];
			nfound++;
		}
		xmlFree(s);
		xmlXPathFreeObject(k);
	}
	if ((e = src_record_found(nfound, err, errlen)) == LB_OK)
		xs->xs_base = found;
done:
	xmlXPathFreeObject(list);
	return e;
}

static void
xml_src_close(void *h)
{
	struct xml_src	*xs = h;

	if (xs == NULL)
		return;
	src_strs_free(&xs->xs_strs);
	if (xs->xs_ctx != NULL)
		xmlXPathFreeContext(xs->xs_ctx);
	if (xs->xs_doc != NULL)
		xmlFreeDoc(xs->xs_doc);
	free(xs);
}

static enum lb_err
xml_src_open(const void *body, size_t len, const struct adapter *ad, const char *subject,
    void **hp, char *err, size_t errlen)
{
	struct xml_src	*xs = NULL;
	const char	*enc;
	size_t		 i;
	enum lb_err	 e = LB_E_DEPARTMENT_BAD_RESPONSE;

	*hp = NULL;
	xml_silence();
	if ((xs = calloc(1, sizeof(*xs))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return LB_E_INTERNAL;
	}
	xs->xs_strs.ss_free = xmlFree;
	/*
	 * The adapter's encoding wins over the document's declaration: the
	 * department registered what it sends.
	 */
	enc = strcmp(ad->ad_encoding, "gbk") == 0 ? "GBK" :
	    strcmp(ad->ad_encoding, "gb18030") == 0 ? "GB18030" : "UTF-8";
	if ((xs->xs_doc = xmlReadMemory(body, (int)len, NULL, enc, XML_PARSE_OPTS)) == NULL) {
		snprintf(err, errlen, "the answer is not well-formed XML in %s", ad->ad_encoding);
		goto done;
	}
	if (xs->xs_doc->intSubset != NULL || xs->xs_doc->extSubset != NULL) {
		snprintf(err, errlen, "the answer has a document type declaration, which is "
		    "not accepted");
		goto done;
	}
	if ((xs->xs_base = xmlDocGetRootElement(xs->xs_doc)) == NULL) {
		snprintf(err, errlen, "the answer has no root element");
		goto done;
	}
	if ((xs->xs_ctx = xmlXPathNewContext(xs->xs_doc)) == NULL) {
		snprintf(err, errlen, "out of memory");
		e = LB_E_INTERNAL;
		goto done;
	}
	for (i = 0; i < ad->ad_nns; i++)
		if (xmlXPathRegisterNs(xs->xs_ctx, (const xmlChar *)ad->ad_ns[i].xn_prefix,
		    (const xmlChar *)ad->ad_ns[i].xn_uri) != 0) {
			snprintf(err, errlen, "out of memory");
			e = LB_E_INTERNAL;
			goto done;
		}
	if (ad->ad_record.rs_set &&
	    (e = xml_select(xs, &ad->ad_record, subject, err, errlen)) != LB_OK)
		goto done;
	*hp = xs;
	xs = NULL;
	e = LB_OK;
done:
	xml_src_close(xs);
	return e;
}

static int
xml_src_get(void *h, const char *sel, struct src_value *v, char *err, size_t errlen)
{
	struct xml_src		*xs = h;
	xmlXPathObjectPtr	 r;
	xmlChar			*s = NULL;
	int			 ret;

	if ((r = xml_eval(xs, xs->xs_base, sel)) == NULL) {
		/* Most often a prefix the spec did not declare in "namespaces". */
		snprintf(err, errlen, "the XPath expression cannot be evaluated (is every "
		    "prefix declared in \"namespaces\"?)");
		return -1;
	}
	ret = xml_string(r, &s);
	xmlXPathFreeObject(r);
	if (ret < 0) {
		snprintf(err, errlen, "the XPath expression names several nodes");
		return -1;
	}
	if (ret == 0)
		return 0;
	return src_strs_keep(&xs->xs_strs, (char *)s, strlen((const char *)s), v, err, errlen);
}

const struct src_ops src_xml_ops = {
	.so_name = "xml",
	.so_encodings = xml_encodings,
	.so_check = xml_src_check,
	.so_open = xml_src_open,
	.so_get = xml_src_get,
	.so_close = xml_src_close,
};
