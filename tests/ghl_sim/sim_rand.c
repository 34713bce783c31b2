/* sim_rand.c — ids, tokens and trace ids.
 *
 * Four independent xoshiro256** streams (ids, tokens, trace ids, faults) so that
 * with --seed N the ids and tokens do not depend on how many trace ids or fault
 * dice were drawn. Without --seed the streams are seeded from getrandom() and
 * tokens come from OpenSSL's RAND_bytes (unguessable).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/rand.h>
#include <openssl/sha.h>

#include "sim.h"

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

void sim_rng_init(struct sim *s)
{
	for (int st = 0; st < RNG_NSTREAMS; st++) {
		uint64_t x;
		if (s->cfg.seeded) {
			x = (uint64_t)s->cfg.seed * 0x2545f4914f6cdd1dULL +
			    (uint64_t)st * 0x9e3779b97f4a7c15ULL;
		} else if (getrandom(&x, sizeof x, 0) != (ssize_t)sizeof x) {
			x = (uint64_t)now_wall_ms() ^ ((uint64_t)st << 32);
		}
		for (int i = 0; i < 4; i++)
			s->rng[st].s[i] = splitmix64(&x);
	}
}

uint64_t sim_rng_next(struct sim *s, enum sim_stream st)
{
	uint64_t *q = s->rng[st].s;
	uint64_t result = rotl(q[1] * 5, 7) * 9;
	uint64_t t = q[1] << 17;
	q[2] ^= q[0];
	q[3] ^= q[1];
	q[1] ^= q[2];
	q[0] ^= q[3];
	q[2] ^= t;
	q[3] = rotl(q[3], 45);
	return result;
}

double sim_rng_double(struct sim *s, enum sim_stream st)
{
	return (double)(sim_rng_next(s, st) >> 11) * (1.0 / 9007199254740992.0);
}

void sim_rng_bytes(struct sim *s, enum sim_stream st, unsigned char *out, size_t n)
{
	while (n > 0) {
		uint64_t r = sim_rng_next(s, st);
		size_t k = n < 8 ? n : 8;
		memcpy(out, &r, k);
		out += k;
		n -= k;
	}
}

char *sim_new_id(struct sim *s)
{
	static const char alnum[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	char *id = xmalloc(21);
	for (int i = 0; i < 20; i++)
		id[i] = alnum[sim_rng_next(s, RNG_IDS) % 62];
	id[20] = '\0';
	return id;
}

char *sim_base64(const unsigned char *p, size_t n)
{
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

char *sim_new_token(struct sim *s, const char *prefix)
{
	unsigned char raw[48];
	if (s->cfg.seeded || RAND_bytes(raw, sizeof raw) != 1)
		sim_rng_bytes(s, RNG_TOKENS, raw, sizeof raw);
	char *b64 = sim_base64(raw, sizeof raw); /* 64 chars, no padding for 48 bytes */
	for (char *p = b64; *p; p++) {
		if (*p == '+')
			*p = '-';
		else if (*p == '/')
			*p = '_';
	}
	char *tok = xasprintf("%s%s", prefix, b64);
	free(b64);
	return tok;
}

void sim_new_trace_id(struct sim *s, char out[40])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[16];
	sim_rng_bytes(s, RNG_TRACE, r, sizeof r);
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
	size_t o = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[r[i] >> 4];
		out[o++] = hex[r[i] & 15];
	}
	out[o] = '\0';
}

void sim_sha256_hex(const char *s, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char d[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)s, strlen(s), d);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[64] = '\0';
}
