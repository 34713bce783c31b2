/* api_key_cache.c — valid API keys cached per process for
 * API_KEY_CACHE_TTL_MS, so machine submissions skip the lookup. See api.h. */
#include "api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"

/* A small direct-mapped cache of valid API keys (by the SHA-256 of the key),
 * so machine submissions skip the lookup round trip. An entry lives
 * API_KEY_CACHE_TTL_MS; revoking a key or deleting an agency through this
 * process clears the cache at once (api_key_cache_clear), other processes
 * notice within the TTL. Only hits are cached: an unknown key always asks
 * the database. */
#define API_KEY_CACHE_SLOTS 256

struct key_entry {
	char hash[65];
	char key_id[API_UUID_LEN];
	char agency_id[API_UUID_LEN];
	int64_t expires_ms;
};

struct api_key_cache {
	struct key_entry slot[API_KEY_CACHE_SLOTS];
};

static struct key_entry *key_slot(struct api_state *st, const char *hash)
{
	if (!st || !st->key_cache)
		return NULL;
	unsigned long i = strtoul((char[]){hash[0], hash[1], hash[2], hash[3], 0}, NULL, 16);
	return &st->key_cache->slot[i % API_KEY_CACHE_SLOTS];
}

struct api_key_cache *api_key_cache_new(void)
{
	return xcalloc(1, sizeof(struct api_key_cache));
}

struct api_key_cache *api_key_cache_free(struct api_key_cache *c)
{
	free(c);
	return NULL;
}

void api_key_cache_clear(struct app *app)
{
	struct api_state *st = app->api;
	if (st && st->key_cache)
		memset(st->key_cache, 0, sizeof(*st->key_cache));
}

/* Fills r->who from the cache: 1 on a hit. */
int api_key_cached(struct api_req *r, const char *hash)
{
	struct key_entry *k = key_slot(r->app->api, hash);
	if (!k || strcmp(k->hash, hash) || k->expires_ms <= now_monotonic_ms())
		return 0;
	struct principal *p = &r->who;
	p->kind = PRINCIPAL_API_KEY;
	snprintf(p->api_key_id, sizeof(p->api_key_id), "%s", k->key_id);
	api_principal_add_agency(p, k->agency_id, strlen(k->agency_id));
	return 1;
}

void api_key_remember(struct api_req *r, const char *hash)
{
	struct key_entry *k = key_slot(r->app->api, hash);
	if (!k)
		return;
	snprintf(k->hash, sizeof(k->hash), "%s", hash);
	snprintf(k->key_id, sizeof(k->key_id), "%s", r->who.api_key_id);
	snprintf(k->agency_id, sizeof(k->agency_id), "%s", r->who.agency_ids[0]);
	k->expires_ms = now_monotonic_ms() + API_KEY_CACHE_TTL_MS;
}
