/* api_roles.c — who the caller is allowed to see: role names, agency-scope
 * checks and the scope array for SQL filters, and the principal's agency list.
 * See api.h. */
#include "api_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const role_names[] = {NULL, "ADMIN", "AGENCY_ADMIN", "SUPPORT"};

const char *api_role_name(enum api_role r)
{
	return (unsigned)r < sizeof(role_names) / sizeof(role_names[0]) ? role_names[r] : NULL;
}

enum api_role api_role_parse(const char *s)
{
	for (size_t i = 1; s && i < sizeof(role_names) / sizeof(role_names[0]); i++)
		if (!strcmp(s, role_names[i]))
			return (enum api_role)i;
	return API_ROLE_NONE;
}

static int in_list(const struct principal *p, const char *agency_id)
{
	for (size_t i = 0; i < p->nagencies; i++)
		if (!strcasecmp(p->agency_ids[i], agency_id))
			return 1;
	return 0;
}

int api_agency_in_scope(const struct principal *p, const char *agency_id)
{
	if (!agency_id)
		return 0;
	if (p->kind == PRINCIPAL_SESSION &&
	    (p->role == API_ROLE_ADMIN || p->role == API_ROLE_SUPPORT))
		return 1;
	if (p->kind == PRINCIPAL_NONE)
		return 0;
	return in_list(p, agency_id);
}

int api_can_manage_agency(const struct principal *p, const char *agency_id)
{
	if (p->kind != PRINCIPAL_SESSION)
		return 0;
	if (p->role == API_ROLE_ADMIN)
		return 1;
	return p->role == API_ROLE_AGENCY_ADMIN && in_list(p, agency_id);
}

char *api_scope_array(const struct principal *p)
{
	if (p->kind == PRINCIPAL_SESSION &&
	    (p->role == API_ROLE_ADMIN || p->role == API_ROLE_SUPPORT))
		return NULL;
	struct buf b;
	buf_init(&b);
	buf_putc(&b, '{');
	for (size_t i = 0; i < p->nagencies; i++) {
		if (i)
			buf_putc(&b, ',');
		buf_puts(&b, p->agency_ids[i]);
	}
	buf_putc(&b, '}');
	return buf_take(&b);
}

void api_principal_clear(struct principal *p)
{
	free(p->email);
	for (size_t i = 0; i < p->nagencies; i++)
		free(p->agency_ids[i]);
	free(p->agency_ids);
	memset(p, 0, sizeof(*p));
}

void api_principal_add_agency(struct principal *p, const char *id, size_t n)
{
	p->agency_ids = xrealloc(p->agency_ids, (p->nagencies + 1) * sizeof(char *));
	p->agency_ids[p->nagencies++] = xstrndup(id, n);
}
