/*
 * subject_id.c - the identifiers a subject may have: a citizen's resident
 * ID number (GB 11643-1999) or an enterprise's unified social credit code
 * (GB 32100-2015).  Both end in a check character over the others, so a
 * mistyped digit is caught before any department is asked.  The simulator
 * uses the same checks, so that the demo data and the gateway can never
 * disagree about what a valid id is.
 */
#include <string.h>

#include "lianban.h"

bool
subject_id_resident(const char *id)
{
	static const int	 weight[17] = { 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8,
	    4, 2 };
	static const char	 check[] = "10X98765432";
	int			 sum = 0, i;

	if (strlen(id) != SUBJECT_ID_LEN)
		return false;
	for (i = 0; i < 17; i++) {
		if (id[i] < '0' || id[i] > '9')
			return false;
		sum += (id[i] - '0') * weight[i];
	}
	return id[17] == check[sum % 11];
}

bool
subject_id_uscc(const char *id)
{
	/* The 31 characters of the code: digits and capitals without I, O, S, V, Z. */
	static const char	 charset[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";
	static const int	 weight[17] = { 1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8,
	    24, 10, 30, 28 };
	const char		*p;
	int			 sum = 0, i, v[SUBJECT_ID_LEN];

	if (strlen(id) != SUBJECT_ID_LEN)
		return false;
	for (i = 0; i < SUBJECT_ID_LEN; i++) {
		if (id[i] == '\0' || (p = strchr(charset, id[i])) == NULL)
			return false;
		v[i] = (int)(p - charset);
	}
	for (i = 0; i < 17; i++)
		sum += v[i] * weight[i];
	return v[17] == (31 - sum % 31) % 31;
}

int
subject_id_birth(const char *id, int *y, int *m, int *d)
{
	static const int	 mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int			 i;

	if (strlen(id) != SUBJECT_ID_LEN)
		return -1;
	for (i = 0; i < 17; i++)
		if (id[i] < '0' || id[i] > '9')
			return -1;
	*y = (id[6] - '0') * 1000 + (id[7] - '0') * 100 + (id[8] - '0') * 10 + (id[9] - '0');
	*m = (id[10] - '0') * 10 + (id[11] - '0');
	*d = (id[12] - '0') * 10 + (id[13] - '0');
	return *y >= 1900 && *m >= 1 && *m <= 12 && *d >= 1 && *d <= mdays[*m - 1] ? 0 : -1;
}

/*
 * Shaped like a resident ID number: 17 digits with a real date of birth
 * and a digit or X -- whether or not its check digit is right, so that a
 * mistyped ID number is refused as a person's rather than taken for an
 * enterprise's code.
 */
static bool
subject_id_person_shaped(const char *id)
{
	int	y, m, d;

	return subject_id_birth(id, &y, &m, &d) == 0 &&
	    ((id[17] >= '0' && id[17] <= '9') || id[17] == 'X');
}

bool
subject_id_enterprise(const char *id)
{
	return subject_id_uscc(id) && !subject_id_person_shaped(id);
}
