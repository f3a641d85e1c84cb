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

/* The settings of every registry command: its operand, if it takes one. */
struct admin_set {
	const char	*ad_operand;	/* FILE, ID or BUNDLE */
};

static const struct optdef admin_opts[] = {
	{ "json", NULL, OPT_GLOBAL, 0, .od_help = "print the gateway's answer as JSON" },
	{ .od_name = NULL }
};

/* A registry: where its entries live and how they are named. */
struct admin_reg {
	const char	*rg_base;	/* "/v1/adapters" */
	const char	*rg_key;	/* the field of a spec that names it: "id" */
	const char	*rg_what;	/* "adapter" */
	const char	*rg_put_verb;	/* what PUT did: "registered" */
	const char	*rg_list;	/* the list in the answer to GET rg_base */
};

static const struct admin_reg admin_adapters = {
	"/v1/adapters", "id", "adapter", "registered", "adapters"
};
static const struct admin_reg admin_policies = {
	"/v1/policies", "bundle", "policy", "loaded", "policies"
};

/* What every registry command has in common: its settings, options and identity. */
#define ADMIN_COMMAND	.cm_operand_off = offsetof(struct admin_set, ad_operand), \
			.cm_opts = admin_opts, .cm_ident = IDENT_NEEDED

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

/*
 * Sends one request of a registry command; its 2xx answer lands in z as o.
 * With --json the answer is printed as the gateway sent it and *shown is
 * set, so the caller prints nothing more.  CTL_*
 */
static int
admin_call(struct ctl *ctl, const struct http_req *req, msgpack_zone *z, msgpack_object *o,
    bool *shown)
{
	struct http_resp	r;
	int			ret;

	*shown = false;
	if ((ret = http_call(ctl, req, z, o, &r)) == CTL_OK && ctl->c_json) {
		ret = http_resp_print(&r);
		*shown = true;
	}
	http_resp_clear(&r);
	return ret;
}

/* PUT FILE's spec to base/ID where ID is the spec's key field. */
static int
admin_put_run(struct ctl *ctl, struct args *ar)
{
	const struct admin_reg	*rg = ar->ar_cmd->cm_data;
	struct admin_set	 s = { NULL };
	msgpack_zone		 z;
	msgpack_object		 spec, o;
	msgpack_sbuffer		 sb;
	char			 id[LB_ID_MAX], path[32 + LB_ID_MAX];
	bool			 shown;
	int			 ret;

	if (ctl_args(ctl, ar, &s, &ret) != 0)
		return ret;
	msgpack_zone_init(&z, 8192);
	msgpack_sbuffer_init(&sb);
	ret = CTL_FAIL;
	if (ctl_load_object(s.ad_operand, &z, &spec) != 0)
		goto done;
	if (mpk_get_str(&spec, rg->rg_key, id, sizeof(id)) != 0) {
		ctl_err("%s: the %s has no \"%s\" string of at most %d bytes", s.ad_operand,
		    rg->rg_what, rg->rg_key, LB_ID_MAX - 1);
		goto done;
	}
	if (admin_segment(rg->rg_key, id) != 0)
		goto done;
	if (mpk_pack(&spec, &sb, false) != 0) {
		ctl_err("%s: the %s cannot be sent as msgpack (non-string keys, duplicate "
		    "keys or real numbers)", s.ad_operand, rg->rg_what);
		goto done;
	}
	snprintf(path, sizeof(path), "%s/%s", rg->rg_base, id);
	ret = admin_call(ctl, &(struct http_req){ .hq_method = "PUT", .hq_path = path,
	    .hq_body = sb.data, .hq_len = sb.size }, &z, &o, &shown);
	if (ret == CTL_OK && !shown && !ctl->c_quiet)
		printf("%s %s %s as version %llu\n", rg->rg_what, id, rg->rg_put_verb,
		    (unsigned long long)admin_u64(&o, "version"));
done:
	msgpack_sbuffer_destroy(&sb);
	msgpack_zone_destroy(&z);
	return ret;
}

/* One line of a list: an adapter or a policy. */
static void
admin_print_entry(const msgpack_object *e, bool adapters)
{
	char	id[LB_ID_MAX], dept[LB_ID_MAX], name[128];

	if (adapters) {
		if (mpk_get_str(e, "id", id, sizeof(id)) != 0 ||
		    mpk_get_str(e, "dept", dept, sizeof(dept)) != 0)
			return;
		printf("%-24s %-8s %7llu  %-8s ", id, dept,
		    (unsigned long long)admin_u64(e, "version"),
		    admin_bool(e, "disabled") ? "disabled" : "enabled");
	} else {
		if (mpk_get_str(e, "bundle", id, sizeof(id)) != 0)
			return;
		if (mpk_get_str(e, "name", name, sizeof(name)) != 0)
			name[0] = '\0';
		printf("%-24s %7llu  %-32s ", id, (unsigned long long)admin_u64(e, "version"),
		    name);
	}
	admin_print_list(mpk_get(e, "items"));
	putchar('\n');
}

/* GET the registry's list and print one line per entry. */
static int
admin_list_run(struct ctl *ctl, struct args *ar)
{
	const struct admin_reg	*rg = ar->ar_cmd->cm_data;
	struct admin_set	 s = { NULL };
	msgpack_zone		 z;
	msgpack_object		 o;
	const msgpack_object	*list;
	bool			 adapters = rg == &admin_adapters, shown;
	uint32_t		 i;
	int			 ret;

	if (ctl_args(ctl, ar, &s, &ret) != 0)
		return ret;
	msgpack_zone_init(&z, 8192);
	ret = admin_call(ctl, &(struct http_req){ .hq_method = "GET", .hq_path = rg->rg_base },
	    &z, &o, &shown);
	if (ret != CTL_OK || shown)
		goto done;
	if ((list = mpk_get(&o, rg->rg_list)) == NULL || list->type != MSGPACK_OBJECT_ARRAY) {
		ctl_err("GET %s: the answer has no \"%s\" list", rg->rg_base, rg->rg_list);
		ret = CTL_FAIL;
		goto done;
	}
	if (ctl->c_quiet)
		goto done;
	if (adapters)
		printf("%-24s %-8s %7s  %-8s %s\n", "ID", "DEPT", "VERSION", "STATE", "ITEMS");
	else
		printf("%-24s %7s  %-32s %s\n", "BUNDLE", "VERSION", "NAME", "ITEMS");
	for (i = 0; i < list->via.array.size; i++)
		admin_print_entry(&list->via.array.ptr[i], adapters);
done:
	msgpack_zone_destroy(&z);
	return ret;
}

/*
 * A request on the registry's entry named by the operand; the 2xx answer
 * lands in z as o.  *shown as for admin_call().
 */
static int
admin_one(struct ctl *ctl, struct args *ar, const char *method, msgpack_zone *z,
    msgpack_object *o, const char **id, bool *shown)
{
	const struct admin_reg	*rg = ar->ar_cmd->cm_data;
	struct admin_set	 s = { NULL };
	char			 path[32 + LB_ID_MAX];
	int			 ret;

	*shown = false;
	if (ctl_args(ctl, ar, &s, &ret) != 0) {
		/* --help was answered, or the command line was wrong: nothing to show. */
		*shown = true;
		return ret;
	}
	if (admin_segment(rg->rg_what, s.ad_operand) != 0)
		return CTL_USAGE;
	*id = s.ad_operand;
	snprintf(path, sizeof(path), "%s/%s", rg->rg_base, s.ad_operand);
	return admin_call(ctl, &(struct http_req){ .hq_method = method, .hq_path = path }, z, o,
	    shown);
}

/* GET base/ID: a summary, then the spec as indented JSON. */
static int
admin_show_run(struct ctl *ctl, struct args *ar)
{
	const struct admin_reg	*rg = ar->ar_cmd->cm_data;
	msgpack_zone		 z;
	msgpack_object		 o;
	const msgpack_object	*spec;
	const char		*id;
	char			 dept[LB_ID_MAX], *json;
	bool			 shown;
	int			 ret;

	msgpack_zone_init(&z, 8192);
	ret = admin_one(ctl, ar, "GET", &z, &o, &id, &shown);
	if (ret != CTL_OK || shown || ctl->c_quiet)
		goto done;
	printf("%s %s, version %llu", rg->rg_what, id,
	    (unsigned long long)admin_u64(&o, "version"));
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
	msgpack_zone_destroy(&z);
	return ret;
}

static int
admin_disable_run(struct ctl *ctl, struct args *ar)
{
	msgpack_zone	 z;
	msgpack_object	 o;
	const char	*id;
	bool		 shown;
	int		 ret;

	msgpack_zone_init(&z, 1024);
	ret = admin_one(ctl, ar, "DELETE", &z, &o, &id, &shown);
	if (ret == CTL_OK && !shown && !ctl->c_quiet)
		printf("adapter %s disabled (version %llu)\n", id,
		    (unsigned long long)admin_u64(&o, "version"));
	msgpack_zone_destroy(&z);
	return ret;
}

const struct command cmd_adapter_register = {
	.cm_name = "adapter register",
	.cm_operand = "FILE",
	.cm_summary = "register a department adapter spec (a new version)",
	.cm_about =
	"Registers an adapter spec (JSON or msgpack; \"-\" reads standard input) as\n"
	"the next version of the adapter its \"id\" names (PUT /v1/adapters/ID;\n"
	"department role, for the department's own adapters).  The gateway checks\n"
	"the spec, journals the change and uses it from the next exchange on.\n",
	ADMIN_COMMAND,
	.cm_run = admin_put_run,
	.cm_data = &admin_adapters
};

const struct command cmd_adapter_list = {
	.cm_name = "adapter list",
	.cm_summary = "list adapters (a department its own, the admin all)",
	.cm_about = "Lists adapters (GET /v1/adapters): a department sees its own, the admin "
	"all.\n",
	ADMIN_COMMAND,
	.cm_run = admin_list_run,
	.cm_data = &admin_adapters
};

const struct command cmd_adapter_show = {
	.cm_name = "adapter show",
	.cm_operand = "ID",
	.cm_summary = "show an adapter and its spec",
	.cm_about =
	"Shows one adapter and its current spec (GET /v1/adapters/ID; its department\n"
	"or the admin).\n",
	ADMIN_COMMAND,
	.cm_run = admin_show_run,
	.cm_data = &admin_adapters
};

const struct command cmd_adapter_disable = {
	.cm_name = "adapter disable",
	.cm_operand = "ID",
	.cm_summary = "disable an adapter of the caller's department",
	.cm_about =
	"Disables an adapter of the caller's department (DELETE /v1/adapters/ID): its\n"
	"items get no_adapter from the next exchange on, unless another adapter serves\n"
	"them.  Its history stays in the journal; registering it again enables it.\n",
	ADMIN_COMMAND,
	.cm_run = admin_disable_run,
	.cm_data = &admin_adapters
};

const struct command cmd_policy_load = {
	.cm_name = "policy load",
	.cm_operand = "FILE",
	.cm_summary = "load a bundle policy (admin; a new version)",
	.cm_about =
	"Loads a bundle policy (JSON or msgpack; \"-\" reads standard input) as the\n"
	"next version of the bundle its \"bundle\" names (PUT /v1/policies/BUNDLE;\n"
	"admin role).  It applies from the next exchange on.\n",
	ADMIN_COMMAND,
	.cm_run = admin_put_run,
	.cm_data = &admin_policies
};

const struct command cmd_policy_list = {
	.cm_name = "policy list",
	.cm_summary = "list the bundle policies in force",
	.cm_about = "Lists the bundle policies in force (GET /v1/policies; any role).\n",
	ADMIN_COMMAND,
	.cm_run = admin_list_run,
	.cm_data = &admin_policies
};

const struct command cmd_policy_show = {
	.cm_name = "policy show",
	.cm_operand = "BUNDLE",
	.cm_summary = "show a bundle policy",
	.cm_about = "Shows one bundle policy (GET /v1/policies/BUNDLE; any role).\n",
	ADMIN_COMMAND,
	.cm_run = admin_show_run,
	.cm_data = &admin_policies
};
