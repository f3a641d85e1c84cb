/*
 * fuzz_body.c - request bodies: JSON through mpk_from_json and msgpack
 * through mpk_unpack (container counts and nesting bounded before any
 * allocation), then the canonical encoder and the JSON printer.
 *
 * Byte 0 picks the decoder (even: JSON, odd: msgpack); the rest is the
 * body.  Whatever decodes must encode canonically to bytes that decode
 * again and pass mpk_is_canonical, and encode to JSON and back, the
 * streaming encoder writing the same text as jansson.  A msgpack
 * body decodes exactly when it is well-formed and all its text is UTF-8.
 */
#include "fuzz_common.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	msgpack_zone	 z, z2;
	msgpack_object	 o, back, raw;
	uint8_t		*bytes = NULL;
	size_t		 len;
	char		 err[256], *json;
	struct mpk_jbuf	 jb = { 0 };
	int		 rc;

	if (size < 1 || size - 1 > LB_BODY_MAX)
		return 0;
	msgpack_zone_init(&z, 4096);
	if ((data[0] & 1) == 0)
		rc = mpk_from_json((const char *)data + 1, size - 1, &z, &o, err, sizeof(err));
	else {
		rc = mpk_unpack(data + 1, size - 1, &z, &o);
		/* A canonical input is one that decodes, when its text is UTF-8. */
		msgpack_zone_init(&z2, 4096);
		if (mpk_unpack_stored(data + 1, size - 1, &z2, &raw) == 0) {
			if ((rc == 0) == fuzz_any(&raw, fuzz_not_text))
				abort();
		} else if (rc == 0 || mpk_is_canonical(data + 1, size - 1))
			abort();
		msgpack_zone_destroy(&z2);
	}
	if (rc == 0) {
		fuzz_json_back(&o, true);
		/* The streaming encoder of answers writes what jansson writes. */
		json = mpk_to_json(&o, false);
		if ((mpk_json_append(&o, &jb) == 0) != (json != NULL) || (json != NULL &&
		    (jb.jb_len != strlen(json) || memcmp(jb.jb_data, json, jb.jb_len) != 0)))
			abort();
		free(json);
		free(jb.jb_data);
		if (mpk_pack_alloc(&o, &bytes, &len) == 0) {
			msgpack_zone_init(&z2, 4096);
			if (mpk_unpack(bytes, len, &z2, &back) != 0 || !mpk_is_canonical(bytes, len))
				abort();
			msgpack_zone_destroy(&z2);
			free(bytes);
		}
	}
	msgpack_zone_destroy(&z);
	return 0;
}
