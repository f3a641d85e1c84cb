/*
 * http_console.c - the audit console (docs/audit.md): its static files at
 * /console/ and the checkpoint certificate its pages verify signatures with.
 *
 * The console is a handful of HTML, JavaScript and CSS files.  They are
 * read once, when the daemon starts, into memory; a request is answered
 * from that table by exact name.  A request path therefore never reaches
 * the file system: "..", "%2e%2e", symlinks planted later or files added
 * later cannot be served, and serving never waits on the disk.  Which files
 * are loaded is bounded (names, extensions, count and sizes below).
 *
 * The console pages carry no secret and hold no session: every call they
 * make to the API is authenticated by the browser's client certificate like
 * any other client's, and the API's roles decide what each call may read.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/sha.h>

#include "gateway.h"

#define CONSOLE_FILES_MAX	128		/* files loaded at most */
#define CONSOLE_FILE_MAX	(4 * 1024 * 1024)	/* bytes of one file */
#define CONSOLE_TOTAL_MAX	(16 * 1024 * 1024)	/* bytes of all of them */
#define CONSOLE_DEPTH_MAX	3		/* folders below the console's own */
#define CONSOLE_NAME_MAX	128		/* a file's path below the console folder */
#define CONSOLE_PREFIX		"/console/"

/*
 * The pages fetch only from their own origin and run only their own
 * scripts; nothing inline, nothing from elsewhere.
 */
#define CONSOLE_CSP	"default-src 'none'; script-src 'self'; style-src 'self'; " \
			"img-src 'self' data:; connect-src 'self'; base-uri 'none'; " \
			"form-action 'self'"

struct console_file {
	char		 cf_name[CONSOLE_NAME_MAX];	/* "vendor/uplot/uPlot.min.css" */
	const char	*cf_type;
	uint8_t		*cf_data;
	size_t		 cf_len;
	char		 cf_etag[20];			/* "\"" 16 hex digits "\"" */
};

struct console {
	char			 cs_dir[PATH_MAX];
	struct console_file	 cs_files[CONSOLE_FILES_MAX];
	size_t			 cs_nfiles;
	size_t			 cs_bytes;
};

/* The content types served, by extension; any other file is not loaded. */
static const struct {
	const char	*ct_ext;
	const char	*ct_type;
} console_types[] = {
	{ ".html",	"text/html; charset=utf-8" },
	{ ".js",	"text/javascript; charset=utf-8" },
	{ ".css",	"text/css; charset=utf-8" },
	{ ".json",	"application/json; charset=utf-8" },
	{ ".txt",	"text/plain; charset=utf-8" },
	{ ".svg",	"image/svg+xml" },
	{ ".png",	"image/png" },
};

static const char *
console_type(const char *name)
{
	size_t	n = strlen(name), e, i;

	for (i = 0; i < sizeof(console_types) / sizeof(console_types[0]); i++) {
		e = strlen(console_types[i].ct_ext);
		if (n > e && strcmp(name + n - e, console_types[i].ct_ext) == 0)
			return console_types[i].ct_type;
	}
	return NULL;
}

/* A name segment: letters, digits, '-', '_' and '.', not starting with '.'. */
static bool
console_segment_ok(const char *s)
{
	size_t	i;

	if (s[0] == '\0' || s[0] == '.')
		return false;
	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '.'))
			return false;
	return true;
}

static int
console_add(struct console *cs, const char *path, const char *name, char *err, size_t errlen)
{
	struct console_file	*cf;
	uint8_t			 md[SHA256_DIGEST_LENGTH];

	if (cs->cs_nfiles == CONSOLE_FILES_MAX) {
		snprintf(err, errlen, "console: %s holds more than %d files", cs->cs_dir,
		    CONSOLE_FILES_MAX);
		return -1;
	}
	cf = &cs->cs_files[cs->cs_nfiles];
	if (strlcpy_chk(cf->cf_name, name, sizeof(cf->cf_name)) != 0) {
		snprintf(err, errlen, "console: %s: name longer than %d bytes", path,
		    CONSOLE_NAME_MAX - 1);
		return -1;
	}
	if (file_read(path, CONSOLE_FILE_MAX, &cf->cf_data, &cf->cf_len) != 0) {
		snprintf(err, errlen, "console: %s: unreadable or larger than %d bytes", path,
		    CONSOLE_FILE_MAX);
		return -1;
	}
	cs->cs_nfiles++;
	if ((cs->cs_bytes += cf->cf_len) > CONSOLE_TOTAL_MAX) {
		snprintf(err, errlen, "console: %s holds more than %d bytes", cs->cs_dir,
		    CONSOLE_TOTAL_MAX);
		return -1;
	}
	cf->cf_type = console_type(name);
	SHA256(cf->cf_data, cf->cf_len, md);
	cf->cf_etag[0] = '"';
	hex_encode(md, 8, cf->cf_etag + 1);
	snprintf(cf->cf_etag + 17, sizeof(cf->cf_etag) - 17, "\"");
	return 0;
}

/*
 * Loads the files of dir/rel (rel "" for the console folder itself), depth
 * folders down.  Hidden names, names with other characters and files of
 * other types are left out.
 */
static int
console_walk(struct console *cs, const char *rel, int depth, char *err, size_t errlen)
{
	DIR		*d = NULL;
	struct dirent	*de;
	struct stat	 st;
	char		 dir[PATH_MAX], path[PATH_MAX], name[CONSOLE_NAME_MAX];
	int		 ret = -1;

	if (snprintf(dir, sizeof(dir), "%s%s%s", cs->cs_dir, rel[0] ? "/" : "", rel) >=
	    (int)sizeof(dir) || (d = opendir(dir)) == NULL) {
		snprintf(err, errlen, "console: %s: %s", dir, strerror(errno));
		goto done;
	}
	while ((de = readdir(d)) != NULL) {
		if (!console_segment_ok(de->d_name))
			continue;
		if (snprintf(name, sizeof(name), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) >=
		    (int)sizeof(name) || path_join(path, sizeof(path), dir, de->d_name) != 0)
			continue;
		/* The operator's own links are followed, once, here. */
		if (stat(path, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (depth < CONSOLE_DEPTH_MAX &&
			    console_walk(cs, name, depth + 1, err, errlen) != 0)
				goto done;
		} else if (S_ISREG(st.st_mode) && console_type(name) != NULL) {
			if (console_add(cs, path, name, err, errlen) != 0)
				goto done;
		}
	}
	ret = 0;
done:
	if (d != NULL)
		closedir(d);
	return ret;
}

void
console_free(struct console *cs)
{
	size_t	i;

	if (cs == NULL)
		return;
	for (i = 0; i < cs->cs_nfiles; i++)
		free(cs->cs_files[i].cf_data);
	free(cs);
}

int
console_load(const char *dir, struct console **out, char *err, size_t errlen)
{
	struct console	*cs = NULL;
	struct stat	 st;
	int		 ret = -1;

	*out = NULL;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return 0;
	if ((cs = calloc(1, sizeof(*cs))) == NULL) {
		snprintf(err, errlen, "console: out of memory");
		goto done;
	}
	if (strlcpy_chk(cs->cs_dir, dir, sizeof(cs->cs_dir)) != 0) {
		snprintf(err, errlen, "console: %s: path too long", dir);
		goto done;
	}
	if (console_walk(cs, "", 0, err, errlen) != 0)
		goto done;
	*out = cs;
	cs = NULL;
	ret = 0;
done:
	console_free(cs);
	return ret;
}

size_t
console_nfiles(const struct console *cs)
{
	return cs == NULL ? 0 : cs->cs_nfiles;
}

static const struct console_file *
console_find(const struct console *cs, const char *name)
{
	size_t	i;

	if (cs == NULL)
		return NULL;
	for (i = 0; i < cs->cs_nfiles; i++)
		if (strcmp(cs->cs_files[i].cf_name, name) == 0)
			return &cs->cs_files[i];
	return NULL;
}

void
http_console(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    const char *path)
{
	struct evkeyvalq		*out = evhttp_request_get_output_headers(req);
	const struct console_file	*cf;
	struct evbuffer			*buf;
	const char			*name, *inm;

	(void)pr;
	name = path + strlen(CONSOLE_PREFIX);
	if (name[0] == '\0')
		name = "index.html";
	if (gw->gw_console == NULL) {
		http_error(req, LB_E_NOT_FOUND, "this gateway serves no console (see --console)");
		return;
	}
	if ((cf = console_find(gw->gw_console, name)) == NULL) {
		http_error(req, LB_E_NOT_FOUND, "the console has no file %s", name);
		return;
	}
	evhttp_add_header(out, "Cache-Control", "no-cache");
	evhttp_add_header(out, "ETag", cf->cf_etag);
	evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(out, "Referrer-Policy", "no-referrer");
	evhttp_add_header(out, "Content-Security-Policy", CONSOLE_CSP);
	inm = evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match");
	if (inm != NULL && strcmp(inm, cf->cf_etag) == 0) {
		evhttp_send_reply(req, 304, "Not Modified", NULL);
		return;
	}
	if ((buf = evbuffer_new()) == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	/* The file stays in memory as long as the gateway runs. */
	evbuffer_add_reference(buf, cf->cf_data, cf->cf_len, NULL, NULL);
	evhttp_add_header(out, "Content-Type", cf->cf_type);
	evhttp_send_reply(req, 200, "OK", buf);
	evbuffer_free(buf);
}

void
http_console_redirect(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    const char *path)
{
	(void)gw;
	(void)pr;
	(void)path;
	evhttp_add_header(evhttp_request_get_output_headers(req), "Location", CONSOLE_PREFIX);
	evhttp_send_reply(req, 301, "Moved Permanently", NULL);
}

/*
 * The checkpoint certificate, so that a browser can check checkpoint
 * signatures itself.  It is the gateway's word for its own key: the console
 * says so, and lets the auditor pin the key's hash (the envelope's kid)
 * obtained some other way.  It is a public certificate, not a journal read,
 * so it is not journaled.
 */
void
http_console_certificate(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    const char *path)
{
	msgpack_zone	 z;
	struct mpk_map	 m;
	unsigned char	*der = NULL;
	uint8_t		 kid[32];
	const char	*alg;
	int		 len;

	(void)pr;
	(void)path;
	if ((len = i2d_X509(gw->gw_ckpt_cert, &der)) <= 0 ||
	    key_id_cert(gw->gw_ckpt_cert, kid) != 0) {
		OPENSSL_free(der);
		http_error(req, LB_E_INTERNAL, "the checkpoint certificate cannot be encoded");
		return;
	}
	alg = envelope_alg_name(envelope_alg_of_key(X509_get0_pubkey(gw->gw_ckpt_cert)));
	msgpack_zone_init(&z, 1024);
	mpk_map_init(&m, &z, 3);
	mpk_map_put(&m, "certificate", mpk_bin(der, (size_t)len));
	mpk_map_put(&m, "kid", mpk_bin(kid, sizeof(kid)));
	mpk_map_put(&m, "alg", mpk_str(alg));
	http_reply(req, 200, &m.mm_obj);
	msgpack_zone_destroy(&z);
	OPENSSL_free(der);
}
