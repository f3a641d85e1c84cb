/*
 * lianctl_admin.c - the registry commands: "lianctl adapter register | list
 * | show | disable" for departments and "lianctl policy load | list | show"
 * for the admin (PUT/GET/DELETE /v1/adapters, PUT/GET /v1/policies).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lianban.h"
#include "lianctl.h"

const char usage_adapter_register[] =
"usage: lianctl [global options] adapter register FILE\n"
"\n"
"Registers an adapter spec (JSON or msgpack; \"-\" reads standard input) as\n"
"the next version of the adapter its \"id\" names (PUT /v1/adapters/ID;\n"
"department role, for the department's own adapters).  The gateway checks\n"
"the spec, journals the change and uses it from the next exchange on.\n"
"\n"
"  --json             print the gateway's answer as JSON\n";

const char usage_adapter_list[] =
"usage: lianctl [global options] adapter list\n"
"\n"
"Lists adapters (GET /v1/adapters): a department sees its own, the admin all.\n"
"\n"
"  --json             print the gateway's answer as JSON\n";

const char usage_adapter_show[] =
"usage: lianctl [global options] adapter show ID\n"
"\n"
"Shows one adapter and its current spec (GET /v1/adapters/ID; its department\n"
"or the admin).\n"
"\n"
"  --json             print the gateway's answer as JSON\n";

const char usage_adapter_disable[] =
"usage: lianctl [global options] adapter disable ID\n"
"\n"
"Disables an adapter of the caller's department (DELETE /v1/adapters/ID): its\n"
"items get no_adapter from the next exchange on, unless another adapter serves\n"
"them.  Its history stays in the journal; registering it again enables it.\n"
"\n"
"  --json             print the gateway's answer as JSON\n";

const char usage_policy_load[] =
"usage: lianctl [global options] policy load FILE\n"
"\n"
"Loads a bundle policy (JSON or msgpack; \"-\" reads standard input) as the\n"
"next version of the bundle its \"bundle\" names (PUT /v1/policies/BUNDLE;\n"
"admin role).  It applies from the next exchange on.\n"
"\n"
"  --json             print the gateway's answer as JSON\n";

const char usage_policy_list[] =
"usage: lianctl [global options] policy list\n"
"\n"
"Lists the bundle policies in force (GET /v1/policies; any role).\n"
"\n"
"  --json             print the gateway's answer as JSON\n";

const char usage_policy_show[] =
"usage: lianctl [global options] policy show BUNDLE\n"
"\n"
"Shows one bundle policy (GET /v1/policies/BUNDLE; any role).\n"
"\n"
"  --json             print the gateway's answer as JSON\n";

/* Parses the command line: global options and exactly want operands. */
static int
admin_args(struct ctl *ctl, struct args *ar, const char *usage, const char **operand)
{
	enum arg_kind	 k;
	enum opt	 id;
	const char	*val;
	int		 n = 0;

	while ((k = arg_next(ar, NULL, &id, &val)) != ARG_END) {
		if (k == ARG_BAD)
			return CTL_USAGE;
		if (k == ARG_OPERAND) {
			if (operand == NULL || n > 0) {
				ctl_err("%s: unexpected operand \"%s\"", ar->ar_cmd, val);
				usage_hint(ar);
				return CTL_USAGE;
			}
			*operand = val;
			n++;
			continue;
		}
		if (id == O_HELP) {
			fputs(usage, stdout);
			return -1;
		}
		if (ctl_global(ctl, id, val) != 0)
			return CTL_USAGE;
	}
	if (operand != NULL && n == 0) {
		ctl_err("%s needs an operand", ar->ar_cmd);
		usage_hint(ar);
		return CTL_USAGE;
	}
	if (ctl_need_identity(ctl, ar->ar_cmd) != 0)
		return CTL_USAGE;
	return CTL_OK;
}

/* A path segment: the ids the gateway takes need no escaping, others are refused. */
static int
admin_segment(const char *what, const char *s)
{
	size_t	i, n = strlen(s);

	if (n == 0 || n >= LB_ID_MAX)
		goto bad;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '.'))
			goto bad;
	return 0;
bad:
	ctl_err("%s \"%s\" must be 1 to %d letters, digits, '-', '_' or '.'", what, s,
	    LB_ID_MAX - 1);
	return -1;
}

/* Sends one request; the 2xx answer's object lands in z.  CTL_* */
static int
admin_call(struct ctl *ctl, const char *method, const char *path, const void *body,
    size_t len, msgpack_zone *z, msgpack_object *o, struct http_resp *r)
{
	char	err[CTL_ERR_MAX];

	if (http_request(ctl, method, path, "application/json",
	    body != NULL ? "application/msgpack" : NULL, body, len, r, err,
	    sizeof(err)) != 0) {
		ctl_err("%s", err);
		return CTL_FAIL;
	}
	if (r->hr_status >= 300)
		return resp_refused(r);
	if (resp_object(r, z, o, err, sizeof(err)) != 0) {
		ctl_err("%s %s: %s", method, path, err);
		return CTL_FAIL;
	}
	return CTL_OK;
}

/* --json: the answer as the gateway sent it, pretty. */
static int
admin_print_raw(const struct http_resp *r)
{
	char	err[CTL_ERR_MAX], *s;

	if ((s = resp_pretty(r, err, sizeof(err))) == NULL) {
		ctl_err("%s", err);
		return CTL_FAIL;
	}
	printf("%s\n", s);
	free(s);
	return CTL_OK;
}

/* "a, b, c" from an array of str. */
static void
admin_print_list(const msgpack_object *a)
{
	char		s[LB_ITEM_MAX];
	uint32_t	i;

	if (a == NULL || a->type != MSGPACK_OBJECT_ARRAY)
		return;
	for (i = 0; i < a->via.array.size; i++)
		if (mpk_obj_str(&a->via.array.ptr[i], s, sizeof(s)) == 0)
			printf("%s%s", i > 0 ? ", " : "", s);
}

static uint64_t
admin_u64(const msgpack_object *m, const char *key)
{
	uint64_t	v = 0;

	(void)mpk_get_u64(m, key, &v);
	return v;
}

static bool
admin_bool(const msgpack_object *m, const char *key)
{
	const msgpack_object	*b = mpk_get(m, key);

	return b != NULL && b->type == MSGPACK_OBJECT_BOOLEAN && b->via.boolean;
}

/* PUT FILE's spec to base/ID where ID is the spec's key field. */
static int
admin_put_file(struct ctl *ctl, struct args *ar, const char *usage, const char *base,
    const char *key, const char *what, const char *done_verb)
{
	msgpack_zone		 z;
	msgpack_object		 spec, o;
	msgpack_sbuffer		 sb;
	struct http_resp	 r;
	const char		*file = NULL;
	char			 id[LB_ID_MAX], path[32 + LB_ID_MAX];
	int			 ret;

	if ((ret = admin_args(ctl, ar, usage, &file)) != CTL_OK)
		return ret < 0 ? CTL_OK : ret;
	memset(&r, 0, sizeof(r));
	msgpack_zone_init(&z, 8192);
	msgpack_sbuffer_init(&sb);
	ret = CTL_FAIL;
	if (load_object(file, &z, &spec) != 0)
		goto done;
	if (mpk_get_str(&spec, key, id, sizeof(id)) != 0) {
		ctl_err("%s: the %s has no \"%s\" string of at most %d bytes", file, what, key,
		    LB_ID_MAX - 1);
		goto done;
	}
	if (admin_segment(key, id) != 0)
		goto done;
	if (mpk_pack(&spec, &sb, false) != 0) {
		ctl_err("%s: the %s cannot be sent as msgpack (non-string keys, duplicate "
		    "keys or real numbers)", file, what);
		goto done;
	}
	snprintf(path, sizeof(path), "%s/%s", base, id);
	if ((ret = admin_call(ctl, "PUT", path, sb.data, sb.size, &z, &o, &r)) != CTL_OK)
		goto done;
	if (ctl->c_json)
		ret = admin_print_raw(&r);
	else if (!ctl->c_quiet)
		printf("%s %s %s as version %llu\n", what, id, done_verb,
		    (unsigned long long)admin_u64(&o, "version"));
done:
	http_resp_clear(&r);
	msgpack_sbuffer_destroy(&sb);
	msgpack_zone_destroy(&z);
	return ret;
}

int
cmd_adapter_register(struct ctl *ctl, struct args *ar)
{
	return admin_put_file(ctl, ar, usage_adapter_register, "/v1/adapters", "id", "adapter",
	    "registered");
}

int
cmd_policy_load(struct ctl *ctl, struct args *ar)
{
	return admin_put_file(ctl, ar, usage_policy_load, "/v1/policies", "bundle", "policy",
	    "loaded");
}

/* GET base (list) and print one line per entry. */
static int
admin_list(struct ctl *ctl, struct args *ar, const char *usage, const char *path,
    const char *listkey)
{
	msgpack_zone		 z;
	msgpack_object		 o;
	const msgpack_object	*list, *e;
	struct http_resp	 r;
	char			 id[LB_ID_MAX], dept[LB_ID_MAX], name[128];
	uint32_t		 i;
	int			 ret;

	if ((ret = admin_args(ctl, ar, usage, NULL)) != CTL_OK)
		return ret < 0 ? CTL_OK : ret;
	memset(&r, 0, sizeof(r));
	msgpack_zone_init(&z, 8192);
	if ((ret = admin_call(ctl, "GET", path, NULL, 0, &z, &o, &r)) != CTL_OK)
		goto done;
	if (ctl->c_json) {
		ret = admin_print_raw(&r);
		goto done;
	}
	if ((list = mpk_get(&o, listkey)) == NULL || list->type != MSGPACK_OBJECT_ARRAY) {
		ctl_err("GET %s: the answer has no \"%s\" list", path, listkey);
		ret = CTL_FAIL;
		goto done;
	}
	if (ctl->c_quiet)
		goto done;
	if (strcmp(listkey, "adapters") == 0)
		printf("%-24s %-8s %7s  %-8s %s\n", "ID", "DEPT", "VERSION", "STATE", "ITEMS");
	else
		printf("%-24s %7s  %-32s %s\n", "BUNDLE", "VERSION", "NAME", "ITEMS");
	for (i = 0; i < list->via.array.size; i++) {
		e = &list->via.array.ptr[i];
		if (strcmp(listkey, "adapters") == 0) {
			if (mpk_get_str(e, "id", id, sizeof(id)) != 0 ||
			    mpk_get_str(e, "dept", dept, sizeof(dept)) != 0)
				continue;
			printf("%-24s %-8s %7llu  %-8s ", id, dept,
			    (unsigned long long)admin_u64(e, "version"),
			    admin_bool(e, "disabled") ? "disabled" : "enabled");
		} else {
			if (mpk_get_str(e, "bundle", id, sizeof(id)) != 0)
				continue;
			if (mpk_get_str(e, "name", name, sizeof(name)) != 0)
				name[0] = '\0';
			printf("%-24s %7llu  %-32s ", id,
			    (unsigned long long)admin_u64(e, "version"), name);
		}
		admin_print_list(mpk_get(e, "items"));
		putchar('\n');
	}
done:
	http_resp_clear(&r);
	msgpack_zone_destroy(&z);
	return ret;
}

int
cmd_adapter_list(struct ctl *ctl, struct args *ar)
{
	return admin_list(ctl, ar, usage_adapter_list, "/v1/adapters", "adapters");
}

int
cmd_policy_list(struct ctl *ctl, struct args *ar)
{
	return admin_list(ctl, ar, usage_policy_list, "/v1/policies", "policies");
}

/* GET base/ID: a summary, then the spec as indented JSON. */
static int
admin_show(struct ctl *ctl, struct args *ar, const char *usage, const char *base,
    const char *what)
{
	msgpack_zone		 z;
	msgpack_object		 o;
	const msgpack_object	*spec;
	struct http_resp	 r;
	const char		*id = NULL;
	char			 path[32 + LB_ID_MAX], dept[LB_ID_MAX], *json;
	int			 ret;

	if ((ret = admin_args(ctl, ar, usage, &id)) != CTL_OK)
		return ret < 0 ? CTL_OK : ret;
	if (admin_segment(what, id) != 0)
		return CTL_USAGE;
	memset(&r, 0, sizeof(r));
	msgpack_zone_init(&z, 8192);
	snprintf(path, sizeof(path), "%s/%s", base, id);
	if ((ret = admin_call(ctl, "GET", path, NULL, 0, &z, &o, &r)) != CTL_OK)
		goto done;
	if (ctl->c_json) {
		ret = admin_print_raw(&r);
		goto done;
	}
	if (ctl->c_quiet)
		goto done;
	printf("%s %s, version %llu", what, id, (unsigned long long)admin_u64(&o, "version"));
	if (mpk_get_str(&o, "dept", dept, sizeof(dept)) == 0)
		printf(", department %s, %s", dept, admin_bool(&o, "disabled") ? "disabled" :
		    "enabled");
	printf("\nitems: ");
	admin_print_list(mpk_get(&o, "items"));
	putchar('\n');
	if ((spec = mpk_get(&o, "spec")) != NULL && spec->type == MSGPACK_OBJECT_MAP &&
	    (json = mpk_to_json(spec, true)) != NULL) {
		printf("spec:\n%s\n", json);
		free(json);
	}
done:
	http_resp_clear(&r);
	msgpack_zone_destroy(&z);
	return ret;
}

int
cmd_adapter_show(struct ctl *ctl, struct args *ar)
{
	return admin_show(ctl, ar, usage_adapter_show, "/v1/adapters", "adapter");
}

int
cmd_policy_show(struct ctl *ctl, struct args *ar)
{
	return admin_show(ctl, ar, usage_policy_show, "/v1/policies", "policy");
}

int
cmd_adapter_disable(struct ctl *ctl, struct args *ar)
{
	msgpack_zone		 z;
	msgpack_object		 o;
	struct http_resp	 r;
	const char		*id = NULL;
	char			 path[32 + LB_ID_MAX];
	int			 ret;

	if ((ret = admin_args(ctl, ar, usage_adapter_disable, &id)) != CTL_OK)
		return ret < 0 ? CTL_OK : ret;
	if (admin_segment("adapter", id) != 0)
		return CTL_USAGE;
	memset(&r, 0, sizeof(r));
	msgpack_zone_init(&z, 1024);
	snprintf(path, sizeof(path), "/v1/adapters/%s", id);
	if ((ret = admin_call(ctl, "DELETE", path, NULL, 0, &z, &o, &r)) != CTL_OK)
		goto done;
	if (ctl->c_json)
		ret = admin_print_raw(&r);
	else if (!ctl->c_quiet)
		printf("adapter %s disabled (version %llu)\n", id,
		    (unsigned long long)admin_u64(&o, "version"));
done:
	http_resp_clear(&r);
	msgpack_zone_destroy(&z);
	return ret;
}
