/*
 * lianctl_http.c - the HTTPS client of lianctl, on libcurl.
 *
 * A command opens one connection to the gateway with its first request and
 * sends every later request on it (HTTP/1.1 keep-alive): journal verify
 * asks for hundreds of proofs, and a TLS handshake for each would cost more
 * than the proofs.  libcurl reads the status line, the headers and every
 * framing of the body; this file gives it the gateway's address, the CA
 * that signed the gateway's certificate, the client identity, and bounds:
 * TLS 1.2 or later, a timeout for connecting and for a gateway that sends
 * nothing, and at most CTL_BODY_MAX bytes of answer.
 *
 * The client key is read by the core library's key_load() (which refuses a
 * key file that others can read) and handed to OpenSSL in memory, so the
 * key is read in one place and freed, wiped, when the connection closes.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "lianban.h"
#include "lianctl.h"

/* The connection of a command: one curl handle and what its callbacks fill. */
struct http_conn {
	CURL		*hc_curl;
	bool		 hc_global;	/* curl_global_init() succeeded */
	EVP_PKEY	*hc_key;	/* the client key; NULL without --cert */
	const char	*hc_cert;	/* its certificate (chain) file */
	char		 hc_ca[PATH_MAX];
	char		 hc_why[CURL_ERROR_SIZE];	/* libcurl's own sentence */
	/* The body of the answer being read. */
	uint8_t		*hc_body;
	size_t		 hc_len, hc_cap;
	bool		 hc_toolarge;
	bool		 hc_nomem;
};

/*
 * Installs the client identity in the TLS context libcurl made for a new
 * connection; libcurl calls it before the handshake.
 */
static CURLcode
http_tls_identity(CURL *curl, void *sslctx, void *arg)
{
	struct http_conn	*hc = arg;
	SSL_CTX			*ctx = sslctx;

	(void)curl;
	if (hc->hc_key == NULL)
		return CURLE_OK;
	if (SSL_CTX_use_certificate_chain_file(ctx, hc->hc_cert) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, hc->hc_key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		return CURLE_SSL_CERTPROBLEM;
	}
	return CURLE_OK;
}

/* Appends what libcurl read of the body, up to CTL_BODY_MAX bytes in all. */
static size_t
http_body(char *data, size_t size, size_t n, void *arg)
{
	struct http_conn	*hc = arg;
	uint8_t			*nb;
	size_t			 len = size * n, cap;

	if (len > CTL_BODY_MAX - hc->hc_len) {
		hc->hc_toolarge = true;
		return 0;
	}
	if (hc->hc_len + len + 1 > hc->hc_cap) {
		cap = hc->hc_cap == 0 ? 65536 : hc->hc_cap;
		while (cap < hc->hc_len + len + 1)
			cap *= 2;
		if ((nb = realloc(hc->hc_body, cap)) == NULL) {
			hc->hc_nomem = true;
			return 0;
		}
		hc->hc_body = nb;
		hc->hc_cap = cap;
	}
	memcpy(hc->hc_body + hc->hc_len, data, len);
	hc->hc_len += len;
	return len;
}

/* Loads the client identity, so that a wrong one is told before connecting. */
static int
http_identity(struct ctl *ctl, struct http_conn *hc)
{
	X509	*cert = NULL;
	char	 err[CTL_ERR_MAX];
	int	 ret = -1;

	if (ctl->c_cert == NULL)
		return 0;
	if (cert_load(ctl->c_cert, &cert, err, sizeof(err)) != 0 ||
	    key_load(ctl->c_key, &hc->hc_key, err, sizeof(err)) != 0) {
		ctl_err("%s", err);
		goto done;
	}
	if (X509_check_private_key(cert, hc->hc_key) != 1) {
		ctl_err("key %s does not belong to certificate %s", ctl->c_key, ctl->c_cert);
		goto done;
	}
	hc->hc_cert = ctl->c_cert;
	ret = 0;
done:
	ERR_clear_error();
	X509_free(cert);
	return ret;
}

/* The connection's settings, the same for every request of the command. */
static int
http_open(struct ctl *ctl)
{
	struct http_conn	*hc;
	CURL			*c;
	const char		*ca;
	char			 cabuf[PATH_MAX];
	int			 ret = -1;

	if (ctl->c_http != NULL)
		return 0;
	if ((hc = calloc(1, sizeof(*hc))) == NULL) {
		ctl_err("out of memory");
		return -1;
	}
	ctl->c_http = hc;
	if ((ca = ctl_path(ctl, ctl->c_ca, "client-ca.pem", cabuf, sizeof(cabuf))) == NULL)
		goto done;
	if ((size_t)snprintf(hc->hc_ca, sizeof(hc->hc_ca), "%s", ca) >= sizeof(hc->hc_ca)) {
		ctl_err("--ca: the path is too long");
		goto done;
	}
	if (http_identity(ctl, hc) != 0)
		goto done;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK)
		hc->hc_global = true;
	if (!hc->hc_global || (hc->hc_curl = c = curl_easy_init()) == NULL) {
		ctl_err("cannot start libcurl");
		goto done;
	}
	/*
	 * The gateway is named by the command line alone: no proxy from the
	 * environment, no redirects, and no CA but the one given (an empty
	 * CAPATH drops the system's certificate directory).
	 */
	if (curl_easy_setopt(c, CURLOPT_ERRORBUFFER, hc->hc_why) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_PROXY, "") != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_USERAGENT, CTL_PROG) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_CAINFO, hc->hc_ca) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_CAPATH, (char *)NULL) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)ctl->c_timeout) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)ctl->c_timeout) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)CTL_BODY_MAX) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_body) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEDATA, hc) != CURLE_OK) {
		ctl_err("libcurl does not take the connection settings");
		goto done;
	}
	if (curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, http_tls_identity) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, hc) != CURLE_OK) {
		ctl_err("libcurl is not built with OpenSSL, which lianctl needs");
		goto done;
	}
	ret = 0;
done:
	if (ret != 0)
		http_close(ctl);
	return ret;
}

void
http_close(struct ctl *ctl)
{
	struct http_conn	*hc = ctl->c_http;

	if (hc == NULL)
		return;
	if (hc->hc_curl != NULL)
		curl_easy_cleanup(hc->hc_curl);
	if (hc->hc_global)
		curl_global_cleanup();
	EVP_PKEY_free(hc->hc_key);
	free(hc->hc_body);
	free(hc);
	ctl->c_http = NULL;
}

/* Says why a transfer failed, in the words of the old hand-written client. */
static void
http_why(struct ctl *ctl, CURLcode rc)
{
	struct http_conn	*hc = ctl->c_http;
	const char		*why = hc->hc_why[0] != '\0' ? hc->hc_why : curl_easy_strerror(rc);
	long			 verify = X509_V_OK, oserr = 0;

	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
		ctl_err("cannot resolve %s: %s", ctl->c_host, why);
		break;
	case CURLE_COULDNT_CONNECT:
		(void)curl_easy_getinfo(hc->hc_curl, CURLINFO_OS_ERRNO, &oserr);
		ctl_err("cannot connect to %s port %s: %s", ctl->c_host, ctl->c_port,
		    oserr != 0 ? strerror((int)oserr) : why);
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
		(void)curl_easy_getinfo(hc->hc_curl, CURLINFO_SSL_VERIFYRESULT, &verify);
		ctl_err("the gateway's TLS certificate is not trusted for %s: %s", ctl->c_host,
		    verify != X509_V_OK ? X509_verify_cert_error_string(verify) : why);
		break;
	case CURLE_SSL_CACERT_BADFILE:
		ctl_err("cannot load the gateway's CA certificate %.512s (give --ca PEM or "
		    "--certs DIR)", hc->hc_ca);
		break;
	case CURLE_SSL_CERTPROBLEM:
		ctl_err("%s: cannot use the client certificate with its key", ctl->c_cert);
		break;
	case CURLE_SSL_CONNECT_ERROR:
		ctl_err("TLS handshake with %s:%s failed: %s", ctl->c_host, ctl->c_port, why);
		break;
	case CURLE_FILESIZE_EXCEEDED:
		ctl_err("the gateway's answer is larger than %zu MiB", CTL_BODY_MAX >> 20);
		break;
	case CURLE_WRITE_ERROR:
		if (hc->hc_toolarge)
			ctl_err("the gateway's answer is larger than %zu MiB", CTL_BODY_MAX >> 20);
		else
			ctl_err("out of memory");
		break;
	case CURLE_OPERATION_TIMEDOUT:
		ctl_err("the gateway at %s:%s did not answer in time: %s", ctl->c_host,
		    ctl->c_port, why);
		break;
	case CURLE_SEND_ERROR:
		ctl_err("sending the request failed: %s", why);
		break;
	default:
		ctl_err("reading the gateway's answer failed: %s", why);
		break;
	}
}

/* The header lines of one request; NULL (reported) when one is refused. */
static struct curl_slist *
http_headers(const struct http_req *req)
{
	struct curl_slist	*h = NULL, *n;
	char			 accept[128], ctype[128];
	const char		*lines[4];
	size_t			 nl = 0, i;

	snprintf(accept, sizeof(accept), "Accept: %s",
	    req->hq_accept != NULL ? req->hq_accept : "application/json");
	lines[nl++] = accept;
	if (req->hq_body != NULL) {
		snprintf(ctype, sizeof(ctype), "Content-Type: %s",
		    req->hq_ctype != NULL ? req->hq_ctype : "application/msgpack");
		lines[nl++] = ctype;
		/* The gateway reads the body at once; waiting for 100 Continue costs a round trip. */
		lines[nl++] = "Expect:";
	}
	if (req->hq_header != NULL) {
		if (strpbrk(req->hq_header, "\r\n") != NULL) {
			ctl_err("a request header may not contain a line break");
			return NULL;
		}
		lines[nl++] = req->hq_header;
	}
	for (i = 0; i < nl; i++) {
		if ((n = curl_slist_append(h, lines[i])) == NULL) {
			curl_slist_free_all(h);
			ctl_err("out of memory");
			return NULL;
		}
		h = n;
	}
	return h;
}

int
http_request(struct ctl *ctl, const struct http_req *req, struct http_resp *resp)
{
	struct http_conn	*hc;
	struct curl_slist	*hdrs = NULL;
	CURL			*c;
	CURLcode		 rc;
	const char		*ctype = NULL, *custom;
	char			 url[512 + 256];
	bool			 v6;
	int			 ret = -1;

	memset(resp, 0, sizeof(*resp));
	if (http_open(ctl) != 0)
		return -1;
	hc = ctl->c_http;
	c = hc->hc_curl;
	hc->hc_len = 0;
	hc->hc_toolarge = hc->hc_nomem = false;
	hc->hc_why[0] = '\0';
	v6 = strchr(ctl->c_host, ':') != NULL;
	if ((size_t)snprintf(url, sizeof(url), "https://%s%s%s:%s%s", v6 ? "[" : "",
	    ctl->c_host, v6 ? "]" : "", ctl->c_port, req->hq_path) >= sizeof(url)) {
		ctl_err("request line too long");
		return -1;
	}
	if ((hdrs = http_headers(req)) == NULL)
		return -1;
	/*
	 * The handle keeps the options of the previous request: each one sets
	 * its method and body anew.  GET and POST are what libcurl sends by
	 * itself; PUT and DELETE are named.
	 */
	custom = strcmp(req->hq_method, req->hq_body != NULL ? "POST" : "GET") == 0 ? NULL :
	    req->hq_method;
	if (req->hq_body == NULL)
		rc = curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	else if ((rc = curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)req->hq_len)) == CURLE_OK)
		rc = curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->hq_body);
	if (rc != CURLE_OK || curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, custom) != CURLE_OK) {
		ctl_err("libcurl does not take the request");
		goto done;
	}
	if ((rc = curl_easy_perform(c)) != CURLE_OK) {
		http_why(ctl, rc);
		goto done;
	}
	if (curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->hr_status) != CURLE_OK ||
	    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ctype) != CURLE_OK) {
		ctl_err("libcurl lost the gateway's answer");
		goto done;
	}
	snprintf(resp->hr_ctype, sizeof(resp->hr_ctype), "%s", ctype != NULL ? ctype : "");
	/* The answer takes the buffer; the next one starts a new one. */
	if (hc->hc_body == NULL && (hc->hc_body = malloc(1)) == NULL) {
		ctl_err("out of memory");
		goto done;
	}
	hc->hc_body[hc->hc_len] = '\0';
	resp->hr_body = hc->hc_body;
	resp->hr_len = hc->hc_len;
	hc->hc_body = NULL;
	hc->hc_len = hc->hc_cap = 0;
	ret = 0;
done:
	/* The handle must not keep pointers to this request's header list or body. */
	(void)curl_easy_setopt(c, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
	(void)curl_easy_setopt(c, CURLOPT_POSTFIELDS, (char *)NULL);
	curl_slist_free_all(hdrs);
	if (ret != 0)
		http_resp_clear(resp);
	return ret;
}

int
http_call(struct ctl *ctl, const struct http_req *req, msgpack_zone *z, msgpack_object *o,
    struct http_resp *resp)
{
	char	err[CTL_ERR_MAX];

	if (http_request(ctl, req, resp) != 0)
		return CTL_FAIL;
	if (resp->hr_status >= 300)
		return http_resp_refused(resp);
	if (http_resp_object(resp, z, o, err, sizeof(err)) != 0) {
		ctl_err("%s %s: %s", req->hq_method, req->hq_path, err);
		return CTL_FAIL;
	}
	return CTL_OK;
}

int
http_get_object(struct ctl *ctl, const char *path, msgpack_zone *z, msgpack_object *o,
    struct http_resp *resp)
{
	return http_call(ctl, &(struct http_req){ .hq_method = "GET", .hq_path = path }, z, o,
	    resp);
}

int
http_show(struct ctl *ctl, const struct http_req *req)
{
	struct http_resp	r;
	int			ret = CTL_FAIL;

	if (http_request(ctl, req, &r) != 0)
		return CTL_FAIL;
	if (r.hr_status >= 300)
		http_resp_refused(&r);
	else if (ctl->c_quiet)
		ret = CTL_OK;
	else
		ret = http_resp_print(&r);
	http_resp_clear(&r);
	return ret;
}

void
http_resp_clear(struct http_resp *r)
{
	free(r->hr_body);
	memset(r, 0, sizeof(*r));
}

bool
http_resp_is_msgpack(const struct http_resp *r)
{
	return strncasecmp(r->hr_ctype, "application/msgpack", 19) == 0 ||
	    strncasecmp(r->hr_ctype, "application/x-msgpack", 21) == 0;
}

int
http_resp_object(const struct http_resp *r, msgpack_zone *z, msgpack_object *o, char *err,
    size_t errlen)
{
	char	why[256];

	if (r->hr_len == 0) {
		snprintf(err, errlen, "the gateway's answer is empty");
		return -1;
	}
	if (http_resp_is_msgpack(r)) {
		if (mpk_unpack(r->hr_body, r->hr_len, z, o) != 0) {
			snprintf(err, errlen, "the gateway's msgpack answer is malformed");
			return -1;
		}
	} else if (mpk_from_json((const char *)r->hr_body, r->hr_len, z, o, why,
	    sizeof(why)) != 0) {
		snprintf(err, errlen, "the gateway's JSON answer is malformed: %s", why);
		return -1;
	}
	if (o->type != MSGPACK_OBJECT_MAP) {
		snprintf(err, errlen, "the gateway's answer is not an object");
		return -1;
	}
	return 0;
}

int
http_resp_refused(const struct http_resp *r)
{
	msgpack_zone		 z;
	msgpack_object		 o;
	const msgpack_object	*e;
	char			 code[64] = "", msg[2048] = "", err[256];

	msgpack_zone_init(&z, 1024);
	if (http_resp_object(r, &z, &o, err, sizeof(err)) == 0 &&
	    (e = mpk_get(&o, "error")) != NULL) {
		(void)mpk_get_str(e, "code", code, sizeof(code));
		(void)mpk_get_str(e, "message", msg, sizeof(msg));
	}
	msgpack_zone_destroy(&z);
	if (code[0] != '\0')
		ctl_err("the gateway refused the request (HTTP %ld, %s): %s", r->hr_status,
		    code, msg[0] != '\0' ? msg : "no message given");
	else
		ctl_err("the gateway answered HTTP %ld without an error description",
		    r->hr_status);
	return CTL_FAIL;
}

char *
http_resp_pretty(const struct http_resp *r, char *err, size_t errlen)
{
	msgpack_zone	 z;
	msgpack_object	 o;
	json_error_t	 jerr;
	json_t		*j;
	char		*s = NULL;

	if (http_resp_is_msgpack(r)) {
		msgpack_zone_init(&z, 4096);
		if (mpk_unpack(r->hr_body, r->hr_len, &z, &o) != 0)
			snprintf(err, errlen, "the gateway's msgpack answer is malformed");
		else if ((s = mpk_to_json(&o, true)) == NULL)
			snprintf(err, errlen, "the gateway's msgpack answer cannot be shown as "
			    "JSON (ext values, keys that are not strings, or text that is not "
			    "UTF-8)");
		msgpack_zone_destroy(&z);
		return s;
	}
	if ((j = json_loadb((const char *)r->hr_body, r->hr_len, 0, &jerr)) == NULL) {
		snprintf(err, errlen, "the gateway's JSON answer is malformed: %s", jerr.text);
		return NULL;
	}
	if ((s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) == NULL)
		snprintf(err, errlen, "out of memory");
	json_decref(j);
	return s;
}

int
http_resp_print(const struct http_resp *r)
{
	char	err[CTL_ERR_MAX], *s;

	if ((s = http_resp_pretty(r, err, sizeof(err))) == NULL) {
		ctl_err("%s", err);
		return CTL_FAIL;
	}
	printf("%s\n", s);
	free(s);
	return CTL_OK;
}
