/*
 * fuzz_replay.c - the main of a fuzz target built without libFuzzer (every
 * build but --enable-fuzzing): it runs LLVMFuzzerTestOneInput once on each
 * file named and on each file of each directory named (in name order), so
 * that make check replays the committed corpora and crash reproducers with
 * the ordinary compiler, and under ASan and UBSan with --enable-sanitizers.
 *
 * Without arguments, a target built as fuzz_NAME replays the corpus
 * $LB_SRCDIR/fuzz/corpus/NAME, which is how make check runs it.  Arguments
 * that begin with "-" are libFuzzer's options and are ignored, so that one
 * command line serves both kinds of build.  A failed property aborts, as
 * under libFuzzer; an empty corpus fails too, since it would prove nothing.
 */
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

/* Large enough for every target's biggest input (a department answer). */
#define REPLAY_INPUT_MAX	(LB_DEPT_BODY_MAX + 16)
#define REPLAY_DIR_MAX		100000

static size_t	replayed;

static int
replay_file(void *arg, const char *path, char *err, size_t errlen)
{
	const char	*base = strrchr(path, '/');
	uint8_t		*buf;
	size_t		 len;

	(void)arg;
	/* Directory walks see "." and "..", and libFuzzer's hidden files. */
	if ((base != NULL ? base[1] : path[0]) == '.')
		return 0;
	if (file_read(path, REPLAY_INPUT_MAX, &buf, &len) != 0) {
		snprintf(err, errlen, "%s: cannot be read as an input", path);
		return -1;
	}
	(void)LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	replayed++;
	return 0;
}

static int
replay(const char *path)
{
	struct stat	st;
	char		err[PATH_MAX + 64];

	err[0] = '\0';
	if (stat(path, &st) != 0) {
		fprintf(stderr, "%s: no such file or directory\n", path);
		return -1;
	}
	if ((S_ISDIR(st.st_mode) ? dir_each(path, "", REPLAY_DIR_MAX, replay_file, NULL, err,
	    sizeof(err)) : replay_file(NULL, path, err, sizeof(err))) != 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char	*prog = strrchr(argv[0], '/'), *srcdir = getenv("LB_SRCDIR");
	char		 corpus[PATH_MAX];
	int		 i, named = 0;

	prog = prog != NULL ? prog + 1 : argv[0];
	(void)LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			continue;
		named++;
		if (replay(argv[i]) != 0)
			return EXIT_FAILURE;
	}
	if (named == 0) {
		if (strncmp(prog, "fuzz_", 5) != 0) {
			fprintf(stderr, "%s: name the inputs or corpus directories to replay\n",
			    prog);
			return EXIT_FAILURE;
		}
		snprintf(corpus, sizeof(corpus), "%s/fuzz/corpus/%s",
		    srcdir != NULL ? srcdir : LB_SRCDIR, prog + 5);
		if (replay(corpus) != 0)
			return EXIT_FAILURE;
	}
	if (replayed == 0) {
		fprintf(stderr, "%s: no inputs to replay\n", prog);
		return EXIT_FAILURE;
	}
	printf("%s: %zu inputs replayed, every property held\n", prog, replayed);
	return EXIT_SUCCESS;
}
