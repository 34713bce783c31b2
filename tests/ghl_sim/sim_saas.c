/* sim_saas.c — the SaaS calls beyond enable-saas (sim_misc.c), agency token,
 * Version 2021-04-15 (GHL_API.md "Go-live endpoints"):
 *   GET  /saas/get-saas-subscription/{locationId}?companyId=  the location's SaaS state
 *   POST /saas/pause/{locationId}              *paused, *companyId → 201
 *   POST /saas/update-rebilling/{companyId}    *product, *locationIds, *config → 201
 * Choices where GHL is not documented: the subscription answer is
 * {"locationId", "companyId", "saasMode": "activated"|"not_activated",
 * "saasPlanId", "priceId", "isSaaSV2", "paused"}; rebilling keeps, per company
 * and product, the union of the location ids and the last config.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static const char *const products[] = {"contentAI",
				       "workflow_premium_actions",
				       "workflow_ai",
				       "conversationAI",
				       "EmailNotification",
				       "whatsApp",
				       NULL};

static int paused(struct sim *s, const char *loc_id)
{
	return json_get_bool(sim_golive(s, "paused", 0), loc_id) == 1;
}

void sim_h_saas_subscription(struct sim_ctx *c)
{
	struct sim_location *loc = sim_location_for(c, c->seg[2]);
	if (!loc)
		return;
	const char *company = sim_query(c, "companyId");
	if (company && *company && sim_check_company(c, company) != 0)
		return;
	struct jw w;
	sim_json_begin(c, &w, 200);
	jw_key(&w, "locationId");
	jw_string(&w, loc->id);
	jw_key(&w, "companyId");
	jw_string(&w, loc->company_id);
	jw_key(&w, "saasMode");
	jw_string(&w, loc->saas ? "activated" : "not_activated");
	jw_key(&w, "saasPlanId");
	jw_string(&w, loc->saas ? json_get_str(loc->saas, "saasPlanId") : NULL);
	jw_key(&w, "priceId");
	jw_string(&w, loc->saas ? json_get_str(loc->saas, "priceId") : NULL);
	jw_key(&w, "isSaaSV2");
	jw_bool(&w, loc->saas && json_get_bool(loc->saas, "isSaaSV2") == 1);
	jw_key(&w, "paused");
	jw_bool(&w, paused(c->s, loc->id));
	sim_json_end(c, &w);
}

void sim_h_saas_pause(struct sim_ctx *c)
{
	struct sim_location *loc = sim_location_for(c, c->seg[2]);
	if (!loc || sim_body_json(c) != 0)
		return;
	struct vec msgs = {0};
	const char *company = sim_req_str(c->body, "companyId", "companyId", &msgs);
	struct json *p = json_get(c->body, "paused");
	if (!p || p->type != JSON_BOOL)
		vec_push(&msgs, xstrdup("paused must be a boolean value"));
	if (sim_golive_422(c, &msgs) != 0)
		return;
	if (!str_eq(company, loc->company_id)) {
		sim_error(c, 403, "The token does not have access to this location.");
		return;
	}
	json_object_set_take(sim_golive(c->s, "paused", 0), loc->id, json_new_bool(p->u.boolean));
	sim_golive_success(c, 201, p->u.boolean ? "Location paused" : "Location resumed");
}

static void rebilling_validate(struct sim_ctx *c, struct vec *msgs)
{
	const char *product = sim_req_str(c->body, "product", "product", msgs);
	int known = 0;
	for (size_t i = 0; product && products[i]; i++)
		known |= str_eq(product, products[i]);
	if (product && !known)
		vec_push(msgs, xstrdup("product must be one of the following values: contentAI, "
				       "workflow_premium_actions, workflow_ai, conversationAI, "
				       "EmailNotification, whatsApp"));
	struct json *ids = json_get(c->body, "locationIds");
	if (!ids || ids->type != JSON_ARRAY)
		vec_push(msgs, xstrdup("locationIds must be an array"));
	for (size_t i = 0; ids && ids->type == JSON_ARRAY && i < json_len(ids); i++)
		if (json_at(ids, i)->type != JSON_STRING) {
			vec_push(msgs, xstrdup("each value in locationIds must be a string"));
			break;
		}
	struct json *config = json_get(c->body, "config");
	if (!config || config->type != JSON_OBJECT)
		vec_push(msgs, xstrdup("config must be an object"));
}

void sim_h_saas_rebilling(struct sim_ctx *c)
{
	const char *company = c->seg[2];
	if (sim_check_company(c, company) != 0 || sim_body_json(c) != 0)
		return;
	struct vec msgs = {0};
	rebilling_validate(c, &msgs);
	if (sim_golive_422(c, &msgs) != 0)
		return;
	struct json *ids = json_get(c->body, "locationIds");
	for (size_t i = 0; i < json_len(ids); i++) {
		struct sim_location *loc = sim_location_get(c->s, json_at(ids, i)->u.str.s);
		if (!loc || !str_eq(loc->company_id, company)) {
			char *m = xasprintf("Location %s not found in this company",
					    json_at(ids, i)->u.str.s);
			sim_error(c, 400, m);
			free(m);
			return;
		}
	}
	struct json *co = sim_golive_member(sim_golive(c->s, "rebilling", 0), company, 0);
	struct json *entry = sim_golive_member(co, json_get_str(c->body, "product"), 0);
	struct json *have = sim_golive_member(entry, "locationIds", 1);
	for (size_t i = 0; i < json_len(ids); i++) {
		const char *id = json_at(ids, i)->u.str.s;
		int dup = 0;
		for (size_t k = 0; k < json_len(have); k++)
			dup |= str_eq(json_at(have, k)->u.str.s, id);
		if (!dup)
			json_array_push_take(have, json_new_string(id));
	}
	json_object_set_take(entry, "config", json_clone(json_get(c->body, "config")));
	sim_golive_success(c, 201, "Rebilling config updated");
}
