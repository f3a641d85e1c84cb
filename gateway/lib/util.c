/*
 * util.c - logging, clocks, encodings and file helpers shared by every
 * program of lianban.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lianban.h"

uint64_t
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
now_us_mono(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t
b64url_encode_to(const void *in, size_t len, char *out)
{
	const uint8_t	*p = in;
	char		*o = out;
	size_t		 i;

	for (i = 0; i + 2 < len; i += 3) {
		*o++ = b64url_alphabet[p[i] >> 2];
		*o++ = b64url_alphabet[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
		*o++ = b64url_alphabet[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)];
		*o++ = b64url_alphabet[p[i + 2] & 63];
	}
	if (len - i == 1) {
		*o++ = b64url_alphabet[p[i] >> 2];
		*o++ = b64url_alphabet[(p[i] & 3) << 4];
	} else if (len - i == 2) {
		*o++ = b64url_alphabet[p[i] >> 2];
		*o++ = b64url_alphabet[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
		*o++ = b64url_alphabet[(p[i + 1] & 15) << 2];
	}
	*o = '\0';
	return (size_t)(o - out);
}

char *
b64url_encode(const void *in, size_t len)
{
	char	*out;

	if (len > (SIZE_MAX - 4) / 4 * 3)
		return NULL;
	if ((out = malloc((len + 2) / 3 * 4 + 1)) == NULL)
		return NULL;
	b64url_encode_to(in, len, out);
	return out;
}

static int
b64url_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

int
b64url_decode(const char *in, size_t len, uint8_t **out, size_t *outlen)
{
	uint8_t		*buf;
	uint32_t	 acc = 0;
	size_t		 i, n = 0;
	int		 bits = 0, v;

	/* A remainder of one character cannot encode a whole byte. */
	if (len % 4 == 1)
		return -1;
	if ((buf = malloc(len / 4 * 3 + 3)) == NULL)
		return -1;
	for (i = 0; i < len; i++) {
		if ((v = b64url_val((unsigned char)in[i])) < 0)
			goto bad;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (uint8_t)(acc >> bits);
		}
	}
	/* Unused trailing bits must be zero: one encoding per byte string. */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		goto bad;
	*out = buf;
	*outlen = n;
	return 0;
bad:
	free(buf);
	return -1;
}

void
hex_encode(const void *in, size_t len, char *out)
{
	static const char	 digits[] = "0123456789abcdef";
	const uint8_t		*p = in;
	size_t			 i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * len] = '\0';
}

static int
hex_val(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
hex_decode(const char *in, size_t len, uint8_t *out, size_t outlen)
{
	size_t	i;
	int	hi, lo;

	if (len != outlen * 2)
		return -1;
	for (i = 0; i < outlen; i++) {
		if ((hi = hex_val((unsigned char)in[2 * i])) < 0 ||
		    (lo = hex_val((unsigned char)in[2 * i + 1])) < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

bool
utf8_valid(const void *s, size_t n)
{
	const unsigned char	*p = s;
	size_t			 i = 0, j, k;
	uint32_t		 cp, min;

	while (i < n) {
		if (p[i] == 0)
			return false;
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((p[i] & 0xe0) == 0xc0) {
			k = 1;
			cp = p[i] & 0x1f;
			min = 0x80;
		} else if ((p[i] & 0xf0) == 0xe0) {
			k = 2;
			cp = p[i] & 0x0f;
			min = 0x800;
		} else if ((p[i] & 0xf8) == 0xf0) {
			k = 3;
			cp = p[i] & 0x07;
			min = 0x10000;
		} else
			return false;
		if (n - i <= k)
			return false;
		for (j = 1; j <= k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

int
file_read(const char *path, size_t max, uint8_t **buf, size_t *len)
{
	mode_t	mode;

	return file_read_mode(path, max, buf, len, &mode);
}

int
file_read_mode(const char *path, size_t max, uint8_t **buf, size_t *len, mode_t *mode)
{
	struct stat	 st;
	uint8_t		*b = NULL;
	size_t		 n = 0;
	ssize_t		 r;
	int		 fd, ret = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if (fstat(fd, &st) == -1)
		goto done;
	*mode = st.st_mode;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
		errno = EFBIG;
		goto done;
	}
	/* One spare byte so text files can be NUL-terminated by callers. */
	if ((b = malloc((size_t)st.st_size + 1)) == NULL)
		goto done;
	while (n < (size_t)st.st_size) {
		r = read(fd, b + n, (size_t)st.st_size - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			goto done;
		n += (size_t)r;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	b = NULL;
	ret = 0;
done:
	/* What was read of a secret file before a failure leaves no copy behind. */
	if (b != NULL)
		explicit_bzero(b, n);
	free(b);
	close(fd);
	return ret;
}

int
file_write(const char *path, const void *data, size_t len, int mode)
{
	char		 tmp[PATH_MAX];
	const uint8_t	*p = data;
	ssize_t		 w;
	int		 fd, n;

	n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -1;
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)) == -1)
		return -1;
	while (len > 0) {
		w = write(fd, p, len);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		p += w;
		len -= (size_t)w;
	}
	if (fsync(fd) == -1 || close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	if (rename(tmp, path) == -1) {
		unlink(tmp);
		return -1;
	}
	return 0;
fail:
	if (fd != -1)
		close(fd);
	unlink(tmp);
	return -1;
}

int
strlcpy_chk(char *dst, const char *src, size_t dstsize)
{
	size_t	n = strlen(src);

	if (n >= dstsize)
		return -1;
	memcpy(dst, src, n + 1);
	return 0;
}

int
path_join(char *buf, size_t bufsz, const char *a, const char *b)
{
	int	n;

	n = snprintf(buf, bufsz, "%s/%s", a, b);
	return n < 0 || (size_t)n >= bufsz ? -1 : 0;
}

int
dir_each(const char *dir, const char *suffix, size_t max, dir_each_fn fn, void *arg,
    char *err, size_t errlen)
{
	struct dirent	**names = NULL;
	char		  path[PATH_MAX];
	size_t		  len, slen = strlen(suffix), nfiles = 0;
	int		  i, n, ret = -1;

	if ((n = scandir(dir, &names, NULL, alphasort)) < 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		len = strlen(names[i]->d_name);
		if (len <= slen || strcmp(names[i]->d_name + len - slen, suffix) != 0)
			continue;
		if (++nfiles > max) {
			snprintf(err, errlen, "%s: more than %zu *%s files", dir, max, suffix);
			goto done;
		}
		if (path_join(path, sizeof(path), dir, names[i]->d_name) != 0) {
			snprintf(err, errlen, "%s: path too long", dir);
			goto done;
		}
		if (fn(arg, path, err, errlen) != 0)
			goto done;
	}
	ret = 0;
done:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return ret;
}
