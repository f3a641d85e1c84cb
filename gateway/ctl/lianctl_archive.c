/*
 * lianctl_archive.c - journal archive: a self-verifying segment of the
 * journal in one file, and the offline check of such a file (journal
 * verify --archive).
 *
 * An archive holds the records FROM to SIZE - 1, the signed checkpoint of
 * SIZE records, and, when FROM > 0, the signed checkpoint of FROM records
 * with the compact range of that tree (its peaks).  Peaks and records
 * recompute the tree of SIZE records, whose root the signature covers, so
 * every byte of every record is bound to its position by the checkpoint
 * signer's key; the archive ends where a signed checkpoint ends, so any
 * later checkpoint proves, with a consistency proof from SIZE, that the
 * journal went on from exactly these records.  Archives chain: the next one
 * starts with the checkpoint this one ends with.
 *
 * The file is a stream of msgpack bin objects (shortest headers): first a
 * canonical msgpack map, the header, then one bin per record, its bytes as
 * the journal stores them.  Reading only bins keeps the reader simple and
 * bounded: nothing in the file is decoded before its length is checked.
 *
 *	header = {"format": "lianban-journal-archive/1", "from": FROM,
 *	          "peaks": [bin(32)...],   compact range of the first FROM records
 *	          "start": {"size","root","t_ms","envelope"},   only when FROM > 0
 *	          "size": SIZE, "root": bin(32), "t_ms": int, "envelope": bin}
 *
 * The header carries the final checkpoint's four fields at its top, the
 * shape "journal checkpoint --save" writes, so "journal verify --checkpoint"
 * reads an archive as the checkpoint it ends with.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lianban.h"
#include "lianctl.h"

#define ARC_FORMAT	"lianban-journal-archive/1"
#define ARC_HEADER_MAX	((size_t)64 * 1024)
#define ARC_RECORD_MAX	((size_t)64 * 1024)	/* a journal record is well below it */
#define ARC_PEAKS_MAX	64

/* One signed checkpoint of an archive: verified, with its envelope bytes. */
struct arc_ckpt {
	struct ckpt	 ac_ck;
	const uint8_t	*ac_env;	/* in the zone it was read into */
	size_t		 ac_envlen;
};

/*
 * Reading and writing the stream of bins.
 */

/* Appends one bin object with the shortest header; -1 on a write error. */
static int
arc_put_bin(FILE *fp, const void *data, size_t len)
{
	uint8_t	hdr[5];
	size_t	n;

	if (len <= 0xff) {
		hdr[0] = 0xc4;
		hdr[1] = (uint8_t)len;
		n = 2;
	} else if (len <= 0xffff) {
		hdr[0] = 0xc5;
		hdr[1] = (uint8_t)(len >> 8);
		hdr[2] = (uint8_t)len;
		n = 3;
	} else {
		hdr[0] = 0xc6;
		hdr[1] = (uint8_t)(len >> 24);
		hdr[2] = (uint8_t)(len >> 16);
		hdr[3] = (uint8_t)(len >> 8);
		hdr[4] = (uint8_t)len;
		n = 5;
	}
	return fwrite(hdr, 1, n, fp) == n && fwrite(data, 1, len, fp) == len ? 0 : -1;
}

/*
 * Reads the next bin object of at most max bytes into *buf (grown as
 * needed; the caller frees it).  0: read; 1: the file ended before it; -1:
 * anything else, with the reason in why.
 */
static int
arc_get_bin(FILE *fp, size_t max, uint8_t **buf, size_t *cap, size_t *len, char *why,
    size_t whylen)
{
	uint8_t	 hdr[4];
	uint8_t	*nb;
	size_t	 n, i, want;
	int	 c;

	if ((c = getc(fp)) == EOF)
		return ferror(fp) ? (snprintf(why, whylen, "%s", strerror(errno)), -1) : 1;
	switch (c) {
	case 0xc4: n = 1; break;
	case 0xc5: n = 2; break;
	case 0xc6: n = 4; break;
	default:
		snprintf(why, whylen, "byte 0x%02x where a msgpack bin begins", c);
		return -1;
	}
	if (fread(hdr, 1, n, fp) != n) {
		snprintf(why, whylen, "the file ends inside a length");
		return -1;
	}
	for (want = 0, i = 0; i < n; i++)
		want = want << 8 | hdr[i];
	/* Shortest headers only, so that one content has one encoding. */
	if ((n == 2 && want <= 0xff) || (n == 4 && want <= 0xffff)) {
		snprintf(why, whylen, "a bin of %zu bytes with a longer header than needed", want);
		return -1;
	}
	if (want > max) {
		snprintf(why, whylen, "a bin of %zu bytes, more than the %zu allowed", want, max);
		return -1;
	}
	if (want > *cap || *buf == NULL) {
		if ((nb = realloc(*buf, want + 1)) == NULL) {
			snprintf(why, whylen, "out of memory");
			return -1;
		}
		*buf = nb;
		*cap = want;
	}
	if (fread(*buf, 1, want, fp) != want) {
		snprintf(why, whylen, "the file ends inside a bin of %zu bytes", want);
		return -1;
	}
	*len = want;
	return 0;
}

/*
 * Reads the header of an archive into *hdr (in z).  1 when the file does
 * not begin like an archive (so it may be something else), -1 when
 * reported.
 */
static int
arc_header_read(FILE *fp, const char *path, msgpack_zone *z, msgpack_object *hdr)
{
	uint8_t	*buf = NULL;
	size_t	 cap = 0, len;
	char	 why[128];
	int	 c, rc, ret = -1;

	if ((c = getc(fp)) == EOF || ungetc(c, fp) == EOF || c < 0xc4 || c > 0xc6) {
		ret = 1;
		goto done;
	}
	if ((rc = arc_get_bin(fp, ARC_HEADER_MAX, &buf, &cap, &len, why, sizeof(why))) != 0) {
		ctl_err("%s: not a journal archive: %s", path, rc == 1 ? "empty" : why);
		goto done;
	}
	if (!mpk_is_canonical(buf, len) || mpk_unpack(buf, len, z, hdr) != 0 ||
	    hdr->type != MSGPACK_OBJECT_MAP || !mpk_str_eq(mpk_get(hdr, "format"), ARC_FORMAT)) {
		ctl_err("%s: not a journal archive: its header is not a canonical msgpack map "
		    "with \"format\": \"%s\"", path, ARC_FORMAT);
		goto done;
	}
	ret = 0;
done:
	free(buf);
	return ret;
}

int
archive_saved_load(const char *path, msgpack_zone *z, msgpack_object *o)
{
	FILE	*fp;
	int	 rc;

	if (strcmp(path, "-") == 0)
		return ctl_load_object(path, z, o);
	if ((fp = fopen(path, "rb")) == NULL) {
		ctl_err("cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	rc = arc_header_read(fp, path, z, o);
	fclose(fp);
	if (rc == 1)
		return ctl_load_object(path, z, o);
	return rc;
}

/*
 * journal verify --archive
 */

/* What an archive's header says, checked. */
struct arc_head {
	uint64_t		 ah_from;
	struct merkle_cr	 ah_cr;		/* the tree of the first ah_from records */
	struct ckpt		 ah_end;
	struct ckpt		 ah_start;	/* when ah_from > 0 */
};

/*
 * The header's fields: exactly those of the format, the checkpoints signed
 * by cert's key, the peaks the tree of "from" records that the starting
 * checkpoint signed.
 */
static int
arc_head_check(const char *path, const msgpack_object *hdr, X509 *cert, msgpack_zone *z,
    struct arc_head *ah)
{
	uint8_t			 peaks[ARC_PEAKS_MAX][32], root[32];
	const msgpack_object	*start;
	char			 what[PATH_MAX + 64];
	size_t			 npeaks;
	uint32_t		 nkeys;

	memset(ah, 0, sizeof(*ah));
	if (mpk_get_u64(hdr, "from", &ah->ah_from) != 0 ||
	    ctl_hashes(hdr, "peaks", z, peaks, ARC_PEAKS_MAX, &npeaks) != 0 ||
	    merkle_cr_set(&ah->ah_cr, ah->ah_from, (const uint8_t (*)[32])peaks, npeaks) != 0) {
		ctl_err("%s: the header's \"from\" and \"peaks\" (one hash per set bit of from) "
		    "are missing or do not fit together", path);
		return -1;
	}
	start = mpk_get(hdr, "start");
	nkeys = ah->ah_from > 0 ? 8 : 7;
	if ((ah->ah_from > 0) != (start != NULL) || hdr->via.map.size != nkeys) {
		ctl_err("%s: the header must hold format, from, peaks, size, root, t_ms, envelope "
		    "and, when from is not 0, start; nothing else", path);
		return -1;
	}
	snprintf(what, sizeof(what), "%s: the checkpoint the archive ends with", path);
	if (ckpt_check(hdr, cert, what, &ah->ah_end) != 0)
		return -1;
	if (ah->ah_end.ck_size <= ah->ah_from) {
		ctl_err("%s: the archive ends at %llu records but starts at %llu", path,
		    (unsigned long long)ah->ah_end.ck_size, (unsigned long long)ah->ah_from);
		return -1;
	}
	if (start == NULL)
		return 0;
	snprintf(what, sizeof(what), "%s: the checkpoint the archive starts at", path);
	if (ckpt_check(start, cert, what, &ah->ah_start) != 0)
		return -1;
	merkle_cr_root(MK_SHA256, &ah->ah_cr, root);
	if (ah->ah_start.ck_size != ah->ah_from || memcmp(root, ah->ah_start.ck_root, 32) != 0) {
		ctl_err("%s: the peaks of the first %llu records do not give the root their "
		    "signed checkpoint says", path, (unsigned long long)ah->ah_from);
		return -1;
	}
	if (strcmp(ah->ah_start.ck_origin, ah->ah_end.ck_origin) != 0) {
		ctl_err("%s: the archive starts at a checkpoint of gateway \"%s\" and ends at "
		    "one of \"%s\"", path, ah->ah_start.ck_origin, ah->ah_end.ck_origin);
		return -1;
	}
	return 0;
}

/* Reads every record after the header into ah_cr; -1 when reported. */
static int
arc_records(FILE *fp, const char *path, struct arc_head *ah)
{
	msgpack_zone	 z;
	msgpack_object	 rec;
	uint8_t		*buf = NULL, leaf[32];
	size_t		 cap = 0, len;
	uint64_t	 seq, end = ah->ah_end.ck_size;
	char		 why[128];
	int		 rc, ret = -1;

	msgpack_zone_init(&z, 4096);
	for (seq = ah->ah_from; seq < end; seq++) {
		rc = arc_get_bin(fp, ARC_RECORD_MAX, &buf, &cap, &len, why, sizeof(why));
		if (rc == 1) {
			ctl_err("%s: the archive ends before record %llu; records %llu to %llu are "
			    "missing", path, (unsigned long long)seq, (unsigned long long)seq,
			    (unsigned long long)end - 1);
			goto done;
		}
		if (rc != 0) {
			ctl_err("%s: record %llu: %s", path, (unsigned long long)seq, why);
			goto done;
		}
		msgpack_zone_clear(&z);
		if (leaf_check(buf, len, seq, &z, &rec) != 0) {
			ctl_err("%s: record %llu is not a journal record: the archive was altered",
			    path, (unsigned long long)seq);
			goto done;
		}
		merkle_leaf_hash(MK_SHA256, buf, len, leaf);
		merkle_cr_append(MK_SHA256, &ah->ah_cr, leaf);
	}
	if ((rc = arc_get_bin(fp, ARC_RECORD_MAX, &buf, &cap, &len, why, sizeof(why))) != 1) {
		ctl_err("%s: there is more after record %llu, the last one the archive's "
		    "checkpoint covers", path, (unsigned long long)end - 1);
		goto done;
	}
	ret = 0;
done:
	free(buf);
	msgpack_zone_destroy(&z);
	return ret;
}

/* The verdict of an archive that verified. */
static int
arc_print(const struct ctl *ctl, const char *path, const struct arc_head *ah)
{
	json_t	*j;
	char	 hex[65], when[64];

	if (ctl->c_json) {
		j = json_pack("{s:b, s:s, s:I, s:I, s:o}", "verified", 1, "archive", path,
		    "from", (json_int_t)ah->ah_from, "records",
		    (json_int_t)(ah->ah_end.ck_size - ah->ah_from), "checkpoint",
		    ckpt_json(&ah->ah_end));
		if (j != NULL && ah->ah_from > 0 && json_object_set_new(j, "start_checkpoint",
		    ckpt_json(&ah->ah_start)) != 0) {
			json_decref(j);
			j = NULL;
		}
		return ctl_json_print(j);
	}
	if (ctl->c_quiet)
		return 0;
	hex_encode(ah->ah_end.ck_root, 32, hex);
	ctl_fmt_time_ms(ah->ah_end.ck_t_ms, when, sizeof(when));
	printf("archive verified: records %llu to %llu (%llu records) of gateway %s; "
	    "root %s matches the checkpoint of %llu records signed at %s\n",
	    (unsigned long long)ah->ah_from, (unsigned long long)ah->ah_end.ck_size - 1,
	    (unsigned long long)(ah->ah_end.ck_size - ah->ah_from), ah->ah_end.ck_origin, hex,
	    (unsigned long long)ah->ah_end.ck_size, when);
	if (ah->ah_from > 0) {
		hex_encode(ah->ah_start.ck_root, 32, hex);
		ctl_fmt_time_ms(ah->ah_start.ck_t_ms, when, sizeof(when));
		printf("it starts at the checkpoint of %llu records (root %s, signed at %s), "
		    "where the archive before it ends\n", (unsigned long long)ah->ah_from, hex,
		    when);
	}
	return 0;
}

int
archive_verify(const struct ctl *ctl, const struct journal_set *s)
{
	struct arc_head	 ah;
	msgpack_zone	 z;
	msgpack_object	 hdr;
	X509		*cert = NULL;
	FILE		*fp = NULL;
	uint8_t		 root[32];
	char		 hex1[65], hex2[65];
	int		 rc, ret = CTL_FAIL;

	msgpack_zone_init(&z, 4096);
	if ((cert = ckpt_cert_load(ctl, s->js_cert)) == NULL)
		goto done;
	if ((fp = fopen(s->js_archive, "rb")) == NULL) {
		ctl_err("cannot read %s: %s", s->js_archive, strerror(errno));
		goto done;
	}
	if ((rc = arc_header_read(fp, s->js_archive, &z, &hdr)) != 0) {
		if (rc == 1)
			ctl_err("%s: not a journal archive (it does not begin with a msgpack bin)",
			    s->js_archive);
		goto done;
	}
	if (arc_head_check(s->js_archive, &hdr, cert, &z, &ah) != 0 ||
	    arc_records(fp, s->js_archive, &ah) != 0)
		goto done;
	merkle_cr_root(MK_SHA256, &ah.ah_cr, root);
	if (memcmp(root, ah.ah_end.ck_root, 32) != 0) {
		hex_encode(root, 32, hex1);
		hex_encode(ah.ah_end.ck_root, 32, hex2);
		ctl_err("%s: records %llu to %llu recompute to root %s, but the archive's signed "
		    "checkpoint says %s: the archive was altered", s->js_archive,
		    (unsigned long long)ah.ah_from, (unsigned long long)ah.ah_end.ck_size - 1,
		    hex1, hex2);
		goto done;
	}
	ret = arc_print(ctl, s->js_archive, &ah) == 0 ? CTL_OK : CTL_FAIL;
done:
	if (fp != NULL)
		fclose(fp);
	X509_free(cert);
	msgpack_zone_destroy(&z);
	return ret;
}

/*
 * journal archive
 */

struct arc_set {
	int64_t		 as_until;
	int64_t		 as_from;
	const char	*as_out;
	const char	*as_cert;
};

/*
 * GET /v1/journal/checkpoint?max_size=N: the newest signed checkpoint of at
 * most N records, verified, and the compact range of its tree into cr.
 */
static int
arc_fetch(struct ctl *ctl, X509 *cert, uint64_t max, msgpack_zone *z, struct arc_ckpt *ac,
    struct merkle_cr *cr)
{
	struct http_resp	 r;
	msgpack_object		 o;
	uint8_t			 peaks[ARC_PEAKS_MAX][32], root[32];
	size_t			 npeaks;
	char			 path[96];
	int			 ret = -1;

	memset(&r, 0, sizeof(r));
	snprintf(path, sizeof(path), "/v1/journal/checkpoint?max_size=%llu",
	    (unsigned long long)max);
	if (http_get_object(ctl, path, z, &o, &r) != CTL_OK ||
	    ckpt_check(&o, cert, "the gateway's checkpoint", &ac->ac_ck) != 0)
		goto done;
	if (mpk_get_bytes(&o, "envelope", z, &ac->ac_env, &ac->ac_envlen) != 0 ||
	    ctl_hashes(&o, "peaks", z, peaks, ARC_PEAKS_MAX, &npeaks) != 0 ||
	    merkle_cr_set(cr, ac->ac_ck.ck_size, (const uint8_t (*)[32])peaks, npeaks) != 0) {
		ctl_err("the gateway's checkpoint of %llu records lacks its compact range "
		    "(\"peaks\"); is the gateway older than this lianctl?",
		    (unsigned long long)ac->ac_ck.ck_size);
		goto done;
	}
	merkle_cr_root(MK_SHA256, cr, root);
	if (memcmp(root, ac->ac_ck.ck_root, 32) != 0) {
		ctl_err("the gateway's compact range of %llu records does not give the root its "
		    "checkpoint signed", (unsigned long long)ac->ac_ck.ck_size);
		goto done;
	}
	ret = 0;
done:
	http_resp_clear(&r);
	return ret;
}

/* The four fields of a checkpoint into m. */
static void
arc_ckpt_put(struct mpk_map *m, const struct arc_ckpt *ac)
{
	mpk_map_put(m, "size", mpk_uint(ac->ac_ck.ck_size));
	mpk_map_put(m, "root", mpk_bin(ac->ac_ck.ck_root, 32));
	mpk_map_put(m, "t_ms", mpk_uint(ac->ac_ck.ck_t_ms));
	mpk_map_put(m, "envelope", mpk_bin(ac->ac_env, ac->ac_envlen));
}

/* Writes the header of an archive from start's tree (cr) to end. */
static int
arc_header_write(FILE *fp, msgpack_zone *z, const struct merkle_cr *cr,
    const struct arc_ckpt *start, const struct arc_ckpt *end)
{
	struct mpk_map	 m, sm;
	msgpack_object	 peaks;
	msgpack_sbuffer	 sb;
	int		 i, ret = -1;

	peaks = mpk_array(z, (uint32_t)cr->cr_n);
	for (i = 0; i < cr->cr_n; i++)
		peaks.via.array.ptr[i] = mpk_bin(cr->cr_peak[i], 32);
	mpk_map_init(&m, z, 8);
	mpk_map_put(&m, "format", mpk_str(ARC_FORMAT));
	mpk_map_put(&m, "from", mpk_uint(cr->cr_size));
	mpk_map_put(&m, "peaks", peaks);
	arc_ckpt_put(&m, end);
	if (cr->cr_size > 0) {
		mpk_map_init(&sm, z, 4);
		arc_ckpt_put(&sm, start);
		mpk_map_put(&m, "start", sm.mm_obj);
	}
	msgpack_sbuffer_init(&sb);
	if (mpk_pack(&m.mm_obj, &sb, false) == 0 && arc_put_bin(fp, sb.data, sb.size) == 0)
		ret = 0;
	msgpack_sbuffer_destroy(&sb);
	return ret;
}

/*
 * Downloads records [from, end) page by page, checks each, adds its leaf to
 * cr and writes it to fp.
 */
static int
arc_fetch_records(struct ctl *ctl, FILE *fp, const char *out, uint64_t end,
    struct merkle_cr *cr)
{
	struct http_resp	 r;
	msgpack_zone		 z;
	msgpack_object		 o, rec;
	const msgpack_object	*leaves;
	const uint8_t		*b;
	uint8_t			 leaf[32];
	uint64_t		 start, want, seq;
	size_t			 len;
	uint32_t		 i;
	char			 path[128];
	int			 ret = -1;

	memset(&r, 0, sizeof(r));
	msgpack_zone_init(&z, 65536);
	while ((start = cr->cr_size) < end) {
		want = end - start > CTL_LEAVES_PAGE ? CTL_LEAVES_PAGE : end - start;
		snprintf(path, sizeof(path), "/v1/journal/leaves?start=%llu&end=%llu",
		    (unsigned long long)start, (unsigned long long)(start + want));
		msgpack_zone_clear(&z);
		if (http_get_object(ctl, path, &z, &o, &r) != CTL_OK)
			goto done;
		http_resp_clear(&r);
		if ((leaves = mpk_get(&o, "leaves")) == NULL ||
		    leaves->type != MSGPACK_OBJECT_ARRAY || leaves->via.array.size == 0 ||
		    leaves->via.array.size > want) {
			ctl_err("the gateway's answer for records %llu to %llu is malformed",
			    (unsigned long long)start, (unsigned long long)(start + want - 1));
			goto done;
		}
		for (i = 0; i < leaves->via.array.size; i++) {
			seq = start + i;
			if (mpk_obj_bytes(&leaves->via.array.ptr[i], &z, &b, &len) != 0 ||
			    len > ARC_RECORD_MAX) {
				ctl_err("record %llu is not bytes of at most %zu",
				    (unsigned long long)seq, ARC_RECORD_MAX);
				goto done;
			}
			if (leaf_check(b, len, seq, &z, &rec) != 0)
				goto done;
			if (arc_put_bin(fp, b, len) != 0) {
				ctl_err("cannot write %s: %s", out, strerror(errno));
				goto done;
			}
			merkle_leaf_hash(MK_SHA256, b, len, leaf);
			merkle_cr_append(MK_SHA256, cr, leaf);
		}
	}
	ret = 0;
done:
	http_resp_clear(&r);
	msgpack_zone_destroy(&z);
	return ret;
}

#define AS(m)	offsetof(struct arc_set, m)
static const struct optdef arc_opts[] = {
	{ "until", "SIZE", OPT_INT, AS(as_until), 1, INT64_MAX, .od_required = true,
	  .od_help = "archive up to the newest signed checkpoint of at\n"
	  "most SIZE records" },
	{ "from", "SIZE", OPT_INT, AS(as_from), 0, INT64_MAX,
	  .od_help = "start after the first SIZE records (default 0);\n"
	  "SIZE must be the size of a signed checkpoint, as\n"
	  "the end of the archive before this one is" },
	{ "out", "FILE", OPT_STR, AS(as_out), .od_required = true,
	  .od_help = "the archive to write (mode 600); it appears only\n"
	  "once complete and checked" },
	{ "checkpoint-cert", "PEM", OPT_STR, AS(as_cert),
	  .od_help = "the checkpoint signer's certificate\n(default DIR/journal/checkpoint.pem)" },
	{ "quiet", NULL, OPT_GLOBAL, 0, .od_help = "print nothing on success" },
	{ .od_name = NULL }
};
#undef AS

static int
arc_check(const void *set, const struct args *ar)
{
	const struct arc_set	*s = set;

	if (s->as_from >= s->as_until) {
		ctl_err("%s: --from must be below --until", ar->ar_name);
		ctl_usage_hint(ar);
		return -1;
	}
	return 0;
}

static int
arc_run(struct ctl *ctl, struct args *ar)
{
	struct arc_set		 s;
	struct arc_ckpt		 start, end;
	struct merkle_cr	 cr, endcr;
	msgpack_zone		 z;
	X509			*cert = NULL;
	FILE			*fp = NULL;
	uint8_t			 root[32];
	char			 tmp[PATH_MAX], hex[65], when[64];
	int			 fd, ret;

	memset(&s, 0, sizeof(s));
	memset(&start, 0, sizeof(start));
	tmp[0] = '\0';
	if (ctl_args(ctl, ar, &s, &ret) != 0)
		return ret;
	msgpack_zone_init(&z, 8192);
	ret = CTL_FAIL;
	if ((cert = ckpt_cert_load(ctl, s.as_cert)) == NULL)
		goto done;
	if (arc_fetch(ctl, cert, (uint64_t)s.as_until, &z, &end, &endcr) != 0)
		goto done;
	if (end.ac_ck.ck_size <= (uint64_t)s.as_from) {
		ctl_err("the newest signed checkpoint of at most %lld records covers %llu; "
		    "nothing after record %lld to archive", (long long)s.as_until,
		    (unsigned long long)end.ac_ck.ck_size, (long long)s.as_from - 1);
		goto done;
	}
	merkle_cr_init(&cr);
	if (s.as_from > 0) {
		if (arc_fetch(ctl, cert, (uint64_t)s.as_from, &z, &start, &cr) != 0)
			goto done;
		if (start.ac_ck.ck_size != (uint64_t)s.as_from) {
			ctl_err("the journal signed no checkpoint of exactly %lld records (the "
			    "newest below covers %llu): an archive starts where a signed "
			    "checkpoint ends, such as the --until of the archive before it",
			    (long long)s.as_from, (unsigned long long)start.ac_ck.ck_size);
			goto done;
		}
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", s.as_out, (long)getpid()) >=
	    (int)sizeof(tmp)) {
		ctl_err("%s: path too long", s.as_out);
		tmp[0] = '\0';
		goto done;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) == -1 ||
	    (fp = fdopen(fd, "wb")) == NULL) {
		ctl_err("cannot write %s: %s", tmp, strerror(errno));
		if (fd != -1)
			close(fd);
		tmp[0] = '\0';
		goto done;
	}
	if (arc_header_write(fp, &z, &cr, &start, &end) != 0) {
		ctl_err("cannot write %s: %s", tmp, strerror(errno));
		goto done;
	}
	if (arc_fetch_records(ctl, fp, tmp, end.ac_ck.ck_size, &cr) != 0)
		goto done;
	merkle_cr_root(MK_SHA256, &cr, root);
	if (memcmp(root, end.ac_ck.ck_root, 32) != 0) {
		ctl_err("the records the gateway sent do not recompute to its signed checkpoint "
		    "of %llu records; no archive written", (unsigned long long)end.ac_ck.ck_size);
		goto done;
	}
	if (fflush(fp) != 0 || fsync(fileno(fp)) != 0 || fclose(fp) != 0) {
		fp = NULL;
		ctl_err("cannot write %s: %s", tmp, strerror(errno));
		goto done;
	}
	fp = NULL;
	if (rename(tmp, s.as_out) != 0) {
		ctl_err("cannot rename %s to %s: %s", tmp, s.as_out, strerror(errno));
		goto done;
	}
	tmp[0] = '\0';
	if (!ctl->c_quiet) {
		hex_encode(root, 32, hex);
		ctl_fmt_time_ms(end.ac_ck.ck_t_ms, when, sizeof(when));
		printf("archive %s: records %lld to %llu (%llu records) of gateway %s, root %s, "
		    "checkpoint of %llu records signed at %s\n", s.as_out, (long long)s.as_from,
		    (unsigned long long)end.ac_ck.ck_size - 1,
		    (unsigned long long)end.ac_ck.ck_size - (uint64_t)s.as_from,
		    end.ac_ck.ck_origin, hex, (unsigned long long)end.ac_ck.ck_size, when);
	}
	ret = CTL_OK;
done:
	if (fp != NULL)
		fclose(fp);
	if (tmp[0] != '\0')
		(void)unlink(tmp);
	X509_free(cert);
	msgpack_zone_destroy(&z);
	return ret;
}

const struct command cmd_journal_archive = {
	.cm_name = "journal archive",
	.cm_summary = "write a self-verifying segment of the journal to a file",
	.cm_synopsis = "[global options] journal archive --until SIZE [--from SIZE]\n"
	"           --out FILE [--checkpoint-cert PEM]",
	.cm_about =
	"Writes the journal's records from --from (default 0) up to the newest signed\n"
	"checkpoint of at most --until records into FILE, with that checkpoint and,\n"
	"after --from 0, the signed checkpoint and compact range the records follow\n"
	"(GET /v1/journal/checkpoint?max_size=, GET /v1/journal/leaves; auditor\n"
	"role).  Every record is checked and the whole recomputed to the signed root\n"
	"before FILE appears.  \"journal verify --archive FILE\" checks it offline;\n"
	"\"journal verify --checkpoint FILE\" proves the journal went on from it.\n",
	.cm_notes = "The next archive starts where this one ends: --from the size printed.\n",
	.cm_opts = arc_opts,
	.cm_check = arc_check,
	.cm_ident = IDENT_NEEDED,
	.cm_run = arc_run
};
