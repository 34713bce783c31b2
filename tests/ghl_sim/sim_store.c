/* sim_store.c — the in-memory data: hash table, vectors and GHL entities.
 *
 * Everything the simulator holds lives in struct sim_store; /_sim/reset frees
 * it and re-creates the demo company with its snapshots.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

/* ---- hash table ---- */

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a, then a final mix */
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

void htab_init(struct htab *t)
{
	t->nb = 64;
	t->n = 0;
	t->b = xcalloc(t->nb, sizeof *t->b);
}

static struct htab_ent **htab_slot(const struct htab *t, const char *key, uint64_t h)
{
	struct htab_ent **pp = &t->b[h & (t->nb - 1)];
	while (*pp && ((*pp)->h != h || strcmp((*pp)->key, key) != 0))
		pp = &(*pp)->next;
	return pp;
}

void *htab_get(const struct htab *t, const char *key)
{
	if (!t->b || !key)
		return NULL;
	struct htab_ent *e = *htab_slot(t, key, hash_str(key));
	return e ? e->val : NULL;
}

static void htab_grow(struct htab *t)
{
	size_t nb = t->nb * 2;
	struct htab_ent **b = xcalloc(nb, sizeof *b);
	for (size_t i = 0; i < t->nb; i++) {
		struct htab_ent *e = t->b[i];
		while (e) {
			struct htab_ent *next = e->next;
			e->next = b[e->h & (nb - 1)];
			b[e->h & (nb - 1)] = e;
			e = next;
		}
	}
	free(t->b);
	t->b = b;
	t->nb = nb;
}

void *htab_put(struct htab *t, const char *key, void *val)
{
	if (!t->b)
		htab_init(t);
	uint64_t h = hash_str(key);
	struct htab_ent **pp = htab_slot(t, key, h);
	if (*pp) {
		void *old = (*pp)->val;
		(*pp)->val = val;
		return old;
	}
	struct htab_ent *e = xmalloc(sizeof *e);
	e->key = xstrdup(key);
	e->val = val;
	e->h = h;
	e->next = NULL;
	*pp = e;
	if (++t->n > t->nb)
		htab_grow(t);
	return NULL;
}

void *htab_del(struct htab *t, const char *key)
{
	if (!t->b || !key)
		return NULL;
	struct htab_ent **pp = htab_slot(t, key, hash_str(key));
	struct htab_ent *e = *pp;
	if (!e)
		return NULL;
	void *val = e->val;
	*pp = e->next;
	free(e->key);
	free(e);
	t->n--;
	return val;
}

void htab_clear(struct htab *t, void (*free_val)(void *))
{
	if (!t->b)
		return;
	for (size_t i = 0; i < t->nb; i++) {
		struct htab_ent *e = t->b[i];
		while (e) {
			struct htab_ent *next = e->next;
			if (free_val)
				free_val(e->val);
			free(e->key);
			free(e);
			e = next;
		}
	}
	free(t->b);
	t->b = NULL;
	t->nb = t->n = 0;
}

struct htab_ent *htab_next(const struct htab *t, struct htab_iter *it)
{
	if (!t->b)
		return NULL;
	if (it->e && it->e->next) {
		it->e = it->e->next;
		return it->e;
	}
	size_t i = it->e ? it->i + 1 : it->i;
	for (; i < t->nb; i++) {
		if (t->b[i]) {
			it->i = i;
			it->e = t->b[i];
			return it->e;
		}
	}
	it->i = t->nb;
	it->e = NULL;
	return NULL;
}

/* ---- vector ---- */

void vec_push(struct vec *v, void *p)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 16;
		v->v = xrealloc(v->v, v->cap * sizeof *v->v);
	}
	v->v[v->n++] = p;
}

void vec_remove(struct vec *v, const void *p)
{
	for (size_t i = 0; i < v->n; i++) {
		if (v->v[i] == p) {
			memmove(&v->v[i], &v->v[i + 1], (v->n - i - 1) * sizeof *v->v);
			v->n--;
			return;
		}
	}
}

void vec_free(struct vec *v)
{
	free(v->v);
	v->v = NULL;
	v->n = v->cap = 0;
}

/* ---- entities ---- */

char *sim_lower(const char *s)
{
	char *r = xstrdup(s ? s : "");
	for (char *p = r; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return r;
}

static void company_free(void *p)
{
	struct sim_company *c = p;
	free(c->id);
	free(c->name);
	free(c);
}

static void snapshot_free(void *p)
{
	struct sim_snapshot *sn = p;
	free(sn->id);
	free(sn->company_id);
	free(sn->name);
	free(sn->type);
	free(sn);
}

static void token_free(void *p)
{
	struct sim_token *t = p;
	free(t->token);
	free(t->company_id);
	free(t->location_id);
	free(t->client_id);
	free(t->user_id);
	free(t->scope);
	free(t);
}

static void code_free(void *p)
{
	struct sim_code *k = p;
	free(k->code);
	free(k->client_id);
	free(k->company_id);
	free(k->location_id);
	free(k->redirect_uri);
	free(k->scope);
	free(k->user_id);
	free(k);
}

void sim_location_free(struct sim_location *loc)
{
	if (!loc)
		return;
	free(loc->id);
	free(loc->company_id);
	json_free(loc->obj);
	free(loc->dup_key);
	free(loc->snapshot_id);
	free(loc->push_id);
	json_free(loc->saas);
	json_free(loc->custom_values);
	json_free(loc->custom_fields);
	json_free(loc->tags);
	json_free(loc->contacts);
	free(loc);
}

static void location_free_cb(void *p)
{
	sim_location_free(p);
}

void sim_user_free(struct sim_user *u)
{
	if (!u)
		return;
	free(u->id);
	free(u->company_id);
	free(u->email_key);
	json_free(u->obj);
	free(u);
}

static void user_free_cb(void *p)
{
	sim_user_free(p);
}

struct sim_snapshot *sim_snapshot_get(struct sim *s, const char *company_id, const char *id)
{
	if (!company_id || !id)
		return NULL;
	char *key = xasprintf("%s\x1f%s", company_id, id);
	struct sim_snapshot *sn = htab_get(&s->store.snapshots, key);
	free(key);
	return sn;
}

struct sim_snapshot *sim_snapshot_add(struct sim *s, const char *company_id, const char *id,
				      const char *name, const char *type)
{
	struct sim_snapshot *sn = sim_snapshot_get(s, company_id, id);
	if (sn)
		return sn;
	sn = xcalloc(1, sizeof *sn);
	sn->id = xstrdup(id);
	sn->company_id = xstrdup(company_id);
	sn->name = xstrdup(name);
	sn->type = xstrdup(type);
	char *key = xasprintf("%s\x1f%s", company_id, id);
	htab_put(&s->store.snapshots, key, sn);
	free(key);
	vec_push(&s->store.snapshot_list, sn);
	return sn;
}

/* Every company (the demo one and those created by an install) starts with
 * the same snapshots, so the agent's seeded snapshot ids match any agency. */
static const struct {
	const char *id, *name, *type;
} default_snapshots[] = {
	{"snap-real-estate-001", "Real Estate Starter", "own"},
	{"snap-dental-001", "Dental Practice", "own"},
	{"snap-fitness-001", "Fitness Studio", "imported"},
	{"snapshot-001", "Default Snapshot", "own"},
};

struct sim_company *sim_company_get_or_create(struct sim *s, const char *id, const char *name)
{
	struct sim_company *co = htab_get(&s->store.companies, id);
	if (co)
		return co;
	co = xcalloc(1, sizeof *co);
	co->id = xstrdup(id);
	co->name = xstrdup(name ? name : id);
	htab_put(&s->store.companies, id, co);
	vec_push(&s->store.company_list, co);
	for (size_t i = 0; i < sizeof default_snapshots / sizeof default_snapshots[0]; i++)
		sim_snapshot_add(s, id, default_snapshots[i].id, default_snapshots[i].name,
				 default_snapshots[i].type);
	return co;
}

struct sim_token *sim_token_issue(struct sim *s, enum tok_kind kind, enum tok_class cls,
				  const char *company_id, const char *location_id,
				  const char *user_id, const char *scope)
{
	struct sim_token *t = xcalloc(1, sizeof *t);
	t->token = sim_new_token(s, kind == TOK_ACCESS ? "ghlsim_at_" : "ghlsim_rt_");
	sim_sha256_hex(t->token, t->fingerprint);
	t->kind = kind;
	t->cls = cls;
	t->company_id = xstrdup(company_id ? company_id : "");
	t->location_id = location_id ? xstrdup(location_id) : NULL;
	t->client_id = xstrdup(s->cfg.client_id);
	t->user_id = xstrdup(user_id ? user_id : "");
	t->scope = xstrdup(scope ? scope : "");
	t->issued_ms = now_wall_ms();
	t->expires_ms = kind == TOK_ACCESS ? t->issued_ms + s->cfg.access_ttl * 1000 : 0;
	htab_put(&s->store.tokens, t->token, t);
	vec_push(&s->store.token_list, t);
	return t;
}

struct sim_token *sim_token_find(struct sim *s, const char *token)
{
	return htab_get(&s->store.tokens, token);
}

struct sim_code *sim_code_issue(struct sim *s, const char *company_id, const char *location_id,
				const char *redirect_uri, const char *scope)
{
	struct sim_code *k = xcalloc(1, sizeof *k);
	k->code = sim_new_token(s, "ghlsim_code_");
	k->client_id = xstrdup(s->cfg.client_id);
	k->company_id = xstrdup(company_id);
	k->location_id = location_id ? xstrdup(location_id) : NULL;
	k->redirect_uri = xstrdup(redirect_uri ? redirect_uri : "");
	k->scope = xstrdup(scope ? scope : "");
	k->user_id = sim_new_id(s);
	k->issued_ms = now_wall_ms();
	htab_put(&s->store.codes, k->code, k);
	vec_push(&s->store.code_list, k);
	return k;
}

struct sim_location *sim_location_get(struct sim *s, const char *id)
{
	return htab_get(&s->store.locations, id);
}

void sim_location_delete(struct sim *s, struct sim_location *loc)
{
	htab_del(&s->store.locations, loc->id);
	vec_remove(&s->store.location_list, loc);
	intptr_t n = (intptr_t)htab_get(&s->store.dup_index, loc->dup_key);
	if (n <= 1)
		htab_del(&s->store.dup_index, loc->dup_key);
	else
		htab_put(&s->store.dup_index, loc->dup_key, (void *)(n - 1));
	sim_location_free(loc);
}

static void store_init_tables(struct sim_store *st)
{
	memset(st, 0, sizeof *st);
	htab_init(&st->companies);
	htab_init(&st->snapshots);
	htab_init(&st->locations);
	htab_init(&st->dup_index);
	htab_init(&st->users);
	htab_init(&st->user_emails);
	htab_init(&st->tokens);
	htab_init(&st->codes);
}

void sim_store_init(struct sim *s)
{
	store_init_tables(&s->store);
	sim_company_get_or_create(s, s->cfg.company_id, "Demo Agency");
}

void sim_store_free(struct sim *s)
{
	struct sim_store *st = &s->store;
	htab_clear(&st->companies, company_free);
	htab_clear(&st->snapshots, snapshot_free);
	htab_clear(&st->locations, location_free_cb);
	htab_clear(&st->dup_index, NULL);
	htab_clear(&st->users, user_free_cb);
	htab_clear(&st->user_emails, NULL);
	htab_clear(&st->tokens, token_free);
	htab_clear(&st->codes, code_free);
	vec_free(&st->company_list);
	vec_free(&st->snapshot_list);
	vec_free(&st->location_list);
	vec_free(&st->user_list);
	vec_free(&st->token_list);
	vec_free(&st->code_list);
	st->golive = json_free(st->golive);
}

void sim_store_reset(struct sim *s)
{
	sim_store_free(s);
	sim_store_init(s);
}
