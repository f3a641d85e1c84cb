/*
 * datadir.c - the data directory (--data) as a whole: the lock that keeps
 * one daemon per directory, and the hot backup of its two LMDB
 * environments, the journal (DATA) and the registry (DATA/registry).
 *
 * Two daemons on one directory would each keep their own idea of the
 * journal's tree in memory while LMDB serialized their writes, so the
 * second one's appends would collide with the first one's records
 * (MDB_KEYEXIST) and wedge both.  DATA/lianband.lock is taken with an
 * exclusive flock before any LMDB environment is opened and held until
 * the process exits; the kernel drops it when the process dies, however it
 * dies, so a crash never leaves a stale lock behind.
 *
 * A backup (lianband --backup DEST) is a separate process that opens both
 * environments read-only next to the running daemon, which LMDB supports:
 * its read transaction is registered in the environment's lock file, so
 * the daemon's writer never reuses a page the copy still reads, and the
 * copy is one committed state of each environment however the daemon
 * writes meanwhile.  The daemon's event loop and journal writer are never
 * involved, and the daemon needs no write access to where backups go.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>

#include "gateway.h"

#define DATADIR_LOCK	"lianband.lock"
#define DATADIR_MDB	"data.mdb"
#define DATADIR_MDBLOCK	"lock.mdb"

/* The pid written in a lock file by its holder, or 0 when it cannot be read. */
static long
datadir_holder(int fd)
{
	char	 buf[32];
	char	*end;
	ssize_t	 n;
	long	 pid;

	if ((n = pread(fd, buf, sizeof(buf) - 1, 0)) <= 0)
		return 0;
	buf[n] = '\0';
	errno = 0;
	pid = strtol(buf, &end, 10);
	if (errno != 0 || end == buf || (*end != '\n' && *end != '\0') || pid <= 0)
		return 0;
	return pid;
}

int
datadir_lock(const char *dir, char *err, size_t errlen)
{
	struct stat	 st;
	char		 path[PATH_MAX], pid[32];
	long		 holder;
	int		 fd = -1, n, ret = -1;

	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "%s: cannot create the data directory: %s", dir,
		    strerror(errno));
		goto done;
	}
	if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: not a directory; give --data a directory", dir);
		goto done;
	}
	if (path_join(path, sizeof(path), dir, DATADIR_LOCK) != 0) {
		snprintf(err, errlen, "%s: path too long", dir);
		goto done;
	}
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto done;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno != EWOULDBLOCK) {
			snprintf(err, errlen, "%s: cannot lock: %s", path, strerror(errno));
			goto done;
		}
		if ((holder = datadir_holder(fd)) > 0)
			snprintf(pid, sizeof(pid), "pid %ld", holder);
		else
			snprintf(pid, sizeof(pid), "pid unknown");
		snprintf(err, errlen, "%s: the data directory is in use by another lianband "
		    "(%s holds %s); one data directory serves one daemon: stop that one, "
		    "or give this one another --data", dir, pid, path);
		goto done;
	}
	/* The holder's pid, for the message of the next one that tries. */
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == -1 || pwrite(fd, pid, (size_t)n, 0) != n) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto done;
	}
	ret = fd;
	fd = -1;
done:
	if (fd != -1)
		close(fd);
	return ret;
}

void
datadir_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

/* Makes dest, or accepts it when it is an empty directory; *made says which. */
static int
datadir_dest(const char *dest, bool *made, char *err, size_t errlen)
{
	DIR		*d;
	struct dirent	*e;
	int		 ret = -1;

	*made = false;
	if (mkdir(dest, 0700) == 0) {
		*made = true;
		return 0;
	}
	if (errno != EEXIST || (d = opendir(dest)) == NULL) {
		snprintf(err, errlen, "%s: %s", dest, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			break;
	if (e != NULL) {
		snprintf(err, errlen, "%s is not empty; a backup goes to a new directory", dest);
		goto done;
	}
	ret = 0;
done:
	closedir(d);
	return ret;
}

/* fsync of a directory, so that the names created in it are durable too. */
static int
datadir_sync_dir(const char *dir)
{
	int	fd, rc;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/*
 * Copies the LMDB environment of src into dst/data.mdb (dst exists),
 * compacted, in one read transaction; *bytes is the copy's size.
 *
 * The environment is opened MDB_RDONLY, which still registers the copy's
 * reader in src/lock.mdb.  LMDB skips that registration where it cannot
 * write the lock file on a read-only file system, and a copy that the
 * running daemon's writer does not know about could read pages the writer
 * reuses; so a lock file this process cannot write is refused up front.
 */
static int
datadir_copy_env(const char *src, const char *dst, uint64_t *bytes, char *err,
    size_t errlen)
{
	MDB_env		*env = NULL;
	struct stat	 st;
	char		 path[PATH_MAX];
	int		 fd = -1, dead = 0, rc, ret = -1;

	if (path_join(path, sizeof(path), src, DATADIR_MDB) != 0 || stat(path, &st) == -1) {
		snprintf(err, errlen, "%s: no LMDB environment there (%s): %s; is --data "
		    "the daemon's data directory?", src, DATADIR_MDB, strerror(errno));
		goto done;
	}
	if (path_join(path, sizeof(path), src, DATADIR_MDBLOCK) != 0 ||
	    ((fd = open(path, O_RDWR | O_CLOEXEC)) == -1 && errno != ENOENT)) {
		snprintf(err, errlen, "%s: %s; a copy next to the running daemon must register "
		    "its reader there: run the backup as the user lianband runs as, with the "
		    "data directory writable", path, strerror(errno));
		goto done;
	}
	if (fd != -1)
		close(fd);
	fd = -1;
	if ((rc = mdb_env_create(&env)) != 0 ||
	    (rc = mdb_env_open(env, src, MDB_RDONLY | MDB_NOTLS, 0600)) != 0) {
		snprintf(err, errlen, "%s: %s", src, mdb_strerror(rc));
		goto done;
	}
	/*
	 * Reader slots of processes that died in a read transaction (an
	 * earlier backup that was killed) keep the pages they saw from being
	 * reused, so the database would grow for nothing; they are cleared.
	 */
	if (mdb_reader_check(env, &dead) == 0 && dead > 0)
		log_info("backup: %s: cleared %d reader slots of processes gone", src, dead);
	if (path_join(path, sizeof(path), dst, DATADIR_MDB) != 0 ||
	    (fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) == -1) {
		snprintf(err, errlen, "%s/%s: %s", dst, DATADIR_MDB, strerror(errno));
		goto done;
	}
	if ((rc = mdb_env_copyfd2(env, fd, MDB_CP_COMPACT)) != 0) {
		snprintf(err, errlen, "%s: copy to %s: %s", src, path, mdb_strerror(rc));
		goto done;
	}
	if (fsync(fd) == -1 || fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto done;
	}
	*bytes = (uint64_t)st.st_size;
	ret = 0;
done:
	if (fd != -1)
		close(fd);
	if (env != NULL)
		mdb_env_close(env);
	return ret;
}

/* Removes what a failed backup wrote; dest itself only when it made it. */
static void
datadir_backup_undo(const char *dest, bool made)
{
	char	path[PATH_MAX];

	if (path_join(path, sizeof(path), dest, REGISTRY_DIR "/" DATADIR_MDB) == 0)
		(void)unlink(path);
	if (path_join(path, sizeof(path), dest, REGISTRY_DIR) == 0)
		(void)rmdir(path);
	if (path_join(path, sizeof(path), dest, DATADIR_MDB) == 0)
		(void)unlink(path);
	if (made)
		(void)rmdir(dest);
}

int
datadir_backup(const char *dir, const char *dest, struct datadir_copy *dc, char *err,
    size_t errlen)
{
	struct stat	 st;
	char		 src[PATH_MAX], dst[PATH_MAX];
	bool		 made = false, wrote = false;
	int		 ret = -1;

	memset(dc, 0, sizeof(*dc));
	if (stat(dir, &st) == -1) {
		snprintf(err, errlen, "%s: %s; give --data the daemon's data directory", dir,
		    strerror(errno));
		goto done;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: not a directory; give --data the daemon's data "
		    "directory", dir);
		goto done;
	}
	if (path_join(src, sizeof(src), dir, REGISTRY_DIR) != 0 ||
	    path_join(dst, sizeof(dst), dest, REGISTRY_DIR) != 0) {
		snprintf(err, errlen, "%s: path too long", strlen(dir) > strlen(dest) ? dir : dest);
		goto done;
	}
	if (datadir_dest(dest, &made, err, errlen) != 0)
		goto done;
	wrote = true;
	if (mkdir(dst, 0700) == -1) {
		snprintf(err, errlen, "%s: %s", dst, strerror(errno));
		goto done;
	}
	/*
	 * The registry first: a registry change is journaled before it is
	 * stored, so every change the registry's copy holds is also in the
	 * journal's copy, taken after it.  As after a crash, the journal may
	 * hold a change more than the registry, never one less.
	 */
	if (datadir_copy_env(src, dst, &dc->dc_registry_bytes, err, errlen) != 0 ||
	    datadir_copy_env(dir, dest, &dc->dc_journal_bytes, err, errlen) != 0)
		goto done;
	if (datadir_sync_dir(dst) == -1 || datadir_sync_dir(dest) == -1) {
		snprintf(err, errlen, "%s: %s", dest, strerror(errno));
		goto done;
	}
	/* The copy must open as a journal whose tree agrees with its records. */
	if (journal_inspect(dest, &dc->dc_journal, err, errlen) != 0)
		goto done;
	ret = 0;
done:
	if (ret != 0 && wrote)
		datadir_backup_undo(dest, made);
	return ret;
}

int
datadir_backup_main(const struct gw_config *gc)
{
	struct datadir_copy	dc;
	char			err[2 * PATH_MAX + 256];

	if (datadir_backup(gc->gc_data, gc->gc_backup, &dc, err, sizeof(err)) != 0) {
		log_warnx("backup: %s", err);
		return 1;
	}
	printf("backup of %s written to %s: journal of %llu records (latest checkpoint "
	    "%llu), %llu bytes; registry %llu bytes\n", gc->gc_data, gc->gc_backup,
	    (unsigned long long)dc.dc_journal.ji_size,
	    (unsigned long long)dc.dc_journal.ji_ckpt_size,
	    (unsigned long long)dc.dc_journal_bytes, (unsigned long long)dc.dc_registry_bytes);
	return fflush(stdout) == 0 ? 0 : 1;
}
