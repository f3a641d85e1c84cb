/*
 * fuzz_translate.c - department answers through translate() (docs/formats.md)
 * with the demo adapter specs: JSON, XML, CSV (UTF-8 and GBK), fixed-width
 * GBK and msgpack.
 *
 * Input: byte 0 picks the spec (in the sorted order of adapters/specs/),
 * byte 1 the requested subject, the rest is the department's answer.  The
 * specs are read once from LB_SRCDIR/adapters/specs, or from the directory
 * in LB_FUZZ_SPECS.
 */
#include <dirent.h>

#include "fuzz_common.h"
#include "gateway.h"

#define FUZZ_MAX_SPECS	32

static struct adapter	*AD[FUZZ_MAX_SPECS];
static size_t		 NAD;

/*
 * Family 1 of adapters/data/families.json, one id nobody has, and the
 * holders of the demo's school place and rental registration.
 */
static const char *const subjects[] = {
	"110105202601010115", "110105199003151239", "110105199203041528",
	"110105201805200021", "000000000000000000", "310104201911200172",
	"510107198502114590"
};

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char	*dir = getenv("LB_FUZZ_SPECS");
	char		 def[1024], path[2048], err[256], *names[FUZZ_MAX_SPECS];
	size_t		 n = 0, i;
	struct dirent	*de;
	DIR		*d;
	msgpack_zone	 z;
	msgpack_object	 o;

	(void)argc;
	(void)argv;
	if (dir == NULL) {
		snprintf(def, sizeof(def), "%s/adapters/specs", LB_SRCDIR);
		dir = def;
	}
	if ((d = opendir(dir)) == NULL) {
		fprintf(stderr, "%s: cannot open the adapter specs\n", dir);
		abort();
	}
	while ((de = readdir(d)) != NULL && n < FUZZ_MAX_SPECS) {
		size_t len = strlen(de->d_name);

		if (len > 5 && strcmp(de->d_name + len - 5, ".json") == 0)
			if ((names[n++] = strdup(de->d_name)) == NULL)
				abort();
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), name_cmp);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		msgpack_zone_init(&z, 8192);
		if (config_json_file(path, &z, &o, err, sizeof(err)) != 0 ||
		    adapter_parse(&o, &AD[NAD], err, sizeof(err)) != 0) {
			fprintf(stderr, "%s: %s\n", path, err);
			abort();
		}
		NAD++;
		msgpack_zone_destroy(&z);
		free(names[i]);
	}
	if (NAD == 0)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct adapter	*ad;
	const char		*sub;
	msgpack_zone		 z;
	msgpack_object		 doc, raw;
	uint8_t			*bytes;
	size_t			 len;
	char			 err[256];
	enum lb_err		 e;

	if (size < 2 || size - 2 > LB_DEPT_BODY_MAX)
		return 0;
	ad = AD[data[0] % NAD];
	sub = subjects[data[1] % (sizeof(subjects) / sizeof(subjects[0]))];
	msgpack_zone_init(&z, 8192);
	err[0] = '\0';
	e = translate(ad, ad->ad_items[0], sub, data + 2, size - 2, &z, &doc, err, sizeof(err));
	if (e == LB_OK) {
		/* A translated document is a canonical msgpack map naming the subject. */
		if (doc.type != MSGPACK_OBJECT_MAP || mpk_pack_alloc(&doc, &bytes, &len) != 0)
			abort();
		if (!mpk_is_canonical(bytes, len))
			abort();
		free(bytes);
		/* Consumers read it as JSON too: every value has a JSON form. */
		fuzz_json_back(&doc, false);
		/* An accepted msgpack answer is UTF-8 text in every str, used or not. */
		if (ad->ad_format == SRC_MSGPACK &&
		    (mpk_unpack_stored(data + 2, size - 2, &z, &raw) != 0 ||
		    fuzz_any(&raw, fuzz_not_text)))
			abort();
	} else if (e != LB_E_DEPARTMENT_BAD_RESPONSE && e != LB_E_SUBJECT_MISMATCH &&
	    e != LB_E_INTERNAL)
		abort();
	else if (err[0] == '\0')
		abort();
	msgpack_zone_destroy(&z);
	return 0;
}
