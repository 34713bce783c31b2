/* passwords.c — bcrypt off the loop, secrets, login throttling; see passwords.h. */
#include "passwords.h"

#include <crypt.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "crypto.h"

const char auth_dummy_hash[] = "$2b$12$NvQHcH2MVvsLWlDiNDLEy.FZvUMdusQY5iEODL.G07HnSch.oWZ8S";

int auth_password_policy(const char *password, struct err *e)
{
	if (!password)
		return err_set(e, "password is required");
	size_t bytes = strlen(password), chars = 0;
	for (const unsigned char *p = (const unsigned char *)password; *p; p++)
		if ((*p & 0xC0) != 0x80)
			chars++;
	if (chars < AUTH_PASSWORD_MIN)
		return err_set(e, "password is too short: at least %d characters are required",
			       AUTH_PASSWORD_MIN);
	if (bytes > AUTH_PASSWORD_MAX)
		return err_set(e, "password is too long: at most %d bytes", AUTH_PASSWORD_MAX);
	return 0;
}

int auth_password_hash(const char *password, int cost, char **out, struct err *e)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	unsigned char rnd[16];
	int rc = -1;
	if (cost < AUTH_BCRYPT_MIN_COST)
		cost = AUTH_BCRYPT_MIN_COST;
	if (crypto_random_bytes(rnd, sizeof(rnd)))
		return err_set(e, "the random number generator failed");
	if (!crypt_gensalt_rn("$2b$", (unsigned long)cost, (const char *)rnd, (int)sizeof(rnd),
			      salt, (int)sizeof(salt))) {
		err_set(e, "crypt_gensalt_rn($2b$, %d) failed: %s", cost, strerror(errno));
		goto out_wipe;
	}
	struct crypt_data *d = xcalloc(1, sizeof(*d));
	const char *h = crypt_r(password, salt, d);
	if (!h || h[0] != '$') {
		err_set(e, "bcrypt failed");
		goto out_free_data;
	}
	*out = xstrdup(h);
	rc = 0;
out_free_data:
	crypto_wipe(d, sizeof(*d));
	free(d);
out_wipe:
	crypto_wipe(rnd, sizeof(rnd));
	return rc;
}

int auth_password_verify(const char *password, const char *hash)
{
	if (!password || !hash || !str_has_prefix(hash, "$2"))
		return 0;
	struct crypt_data *d = xcalloc(1, sizeof(*d));
	const char *h = crypt_r(password, hash, d);
	int ok = h && h[0] == '$' && crypto_str_eq_ct(h, hash);
	crypto_wipe(d, sizeof(*d));
	free(d);
	return ok;
}

char *auth_new_session_token(void)
{
	for (;;) {
		char *t = crypto_random_token(32);
		if (!t || !auth_is_api_key(t))
			return t;
		free(t);
	}
}

char *auth_new_api_key(void)
{
	char *t = crypto_random_token(32);
	if (!t)
		return NULL;
	char *k = xasprintf("%s%s", AUTH_API_KEY_PREFIX, t);
	secret_free(t);
	return k;
}

int auth_is_api_key(const char *token)
{
	return token && str_has_prefix(token, AUTH_API_KEY_PREFIX);
}

void auth_secret_hash(const char *secret, char out[65])
{
	crypto_sha256_hex(secret, strlen(secret), out);
}

/* ---- worker pool ------------------------------------------------------- */

enum job_kind { JOB_HASH, JOB_VERIFY };

struct job {
	struct job *next;
	enum job_kind kind;
	char *password;
	char *hash; /* JOB_VERIFY: the stored hash; JOB_HASH: the result */
	int cost;
	int ok;
	auth_hash_cb hash_cb;
	auth_verify_cb verify_cb;
	void *arg;
};

struct auth_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *todo_head, *todo_tail;
	struct job *done_head, *done_tail;
	pthread_t *threads;
	int nthreads;
	int stop;
	int pending;
	int pipe_rd, pipe_wr;
	struct event *ev;
};

static void job_free(struct job *j)
{
	secret_free(j->password);
	free(j->hash);
	free(j);
}

static void push(struct job **head, struct job **tail, struct job *j)
{
	j->next = NULL;
	if (*tail)
		(*tail)->next = j;
	else
		*head = j;
	*tail = j;
}

static void *worker(void *arg)
{
	struct auth_pool *p = arg;
	/* bcrypt yields the CPU to the event loop: on a machine with as many
	 * cores as workers, logins must not add their run time to every other
	 * request's latency (Linux: nice applies per thread). Best effort. */
	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), AUTH_WORKER_NICE);
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stop && !p->todo_head)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stop)
			break;
		struct job *j = p->todo_head;
		p->todo_head = j->next;
		if (!p->todo_head)
			p->todo_tail = NULL;
		pthread_mutex_unlock(&p->mu);

		if (j->kind == JOB_HASH) {
			char *h = NULL;
			if (auth_password_hash(j->password, j->cost, &h, NULL) == 0)
				j->hash = h;
		} else {
			j->ok = auth_password_verify(j->password, j->hash);
		}
		crypto_wipe(j->password, strlen(j->password));

		pthread_mutex_lock(&p->mu);
		push(&p->done_head, &p->done_tail, j);
		char one = 1;
		/* a full pipe already means "wake up" */
		ssize_t w = write(p->pipe_wr, &one, 1);
		(void)w;
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct auth_pool *p = arg;
	char drain[64];
	while (read(fd, drain, sizeof(drain)) > 0)
		;
	pthread_mutex_lock(&p->mu);
	struct job *list = p->done_head;
	p->done_head = p->done_tail = NULL;
	pthread_mutex_unlock(&p->mu);
	while (list) {
		struct job *j = list;
		list = j->next;
		p->pending--;
		if (j->kind == JOB_HASH) {
			char *h = j->hash;
			j->hash = NULL;
			j->hash_cb(j->arg, h);
		} else {
			j->verify_cb(j->arg, j->ok);
		}
		job_free(j);
	}
}

struct auth_pool *auth_pool_new(struct event_base *base, int nthreads, struct err *e)
{
	struct auth_pool *p = xcalloc(1, sizeof(*p));
	int fds[2];
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK)) {
		err_set(e, "auth pool: pipe: %s", strerror(errno));
		free(p);
		return NULL;
	}
	p->pipe_rd = fds[0];
	p->pipe_wr = fds[1];
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->ev = event_new(base, p->pipe_rd, EV_READ | EV_PERSIST, on_done, p);
	event_add(p->ev, NULL);
	if (nthreads < 1)
		nthreads = 1;
	p->threads = xcalloc((size_t)nthreads, sizeof(pthread_t));
	for (int i = 0; i < nthreads; i++) {
		int rc = pthread_create(&p->threads[i], NULL, worker, p);
		if (rc) {
			err_set(e, "auth pool: pthread_create: %s", strerror(rc));
			auth_pool_free(p);
			return NULL;
		}
		p->nthreads++;
	}
	return p;
}

struct auth_pool *auth_pool_free(struct auth_pool *p)
{
	if (!p)
		return NULL;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	free(p->threads);
	for (struct job *j = p->todo_head, *n; j; j = n) {
		n = j->next;
		job_free(j);
	}
	for (struct job *j = p->done_head, *n; j; j = n) {
		n = j->next;
		job_free(j);
	}
	if (p->ev)
		event_free(p->ev);
	close(p->pipe_rd);
	close(p->pipe_wr);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
	return NULL;
}

static void submit(struct auth_pool *p, struct job *j)
{
	p->pending++;
	pthread_mutex_lock(&p->mu);
	push(&p->todo_head, &p->todo_tail, j);
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

void auth_pool_hash(struct auth_pool *p, const char *password, int cost, auth_hash_cb cb, void *arg)
{
	struct job *j = xcalloc(1, sizeof(*j));
	j->kind = JOB_HASH;
	j->password = xstrdup(password);
	j->cost = cost;
	j->hash_cb = cb;
	j->arg = arg;
	submit(p, j);
}

void auth_pool_verify(struct auth_pool *p, const char *password, const char *hash,
		      auth_verify_cb cb, void *arg)
{
	struct job *j = xcalloc(1, sizeof(*j));
	j->kind = JOB_VERIFY;
	j->password = xstrdup(password);
	j->hash = xstrdup(hash);
	j->verify_cb = cb;
	j->arg = arg;
	submit(p, j);
}

int auth_pool_pending(const struct auth_pool *p)
{
	return p->pending;
}

/* ---- throttle ---------------------------------------------------------- */

/* Each key keeps the times of its recent failures, oldest first, in a small
 * array; entries are chained in hash buckets and in a recency list used to
 * evict when max_keys is reached. */
struct tentry {
	struct tentry *hnext;
	struct tentry *lprev, *lnext; /* recency: head = most recent failure */
	char *key;
	int64_t *times;
	size_t n, cap;
};

#define TBUCKETS 1024

struct throttle {
	struct tentry *buckets[TBUCKETS];
	struct tentry *lhead, *ltail;
	size_t size, max_keys;
};

static size_t thash(const char *s)
{
	size_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h % TBUCKETS;
}

struct throttle *throttle_new(size_t max_keys)
{
	struct throttle *t = xcalloc(1, sizeof(*t));
	t->max_keys = max_keys ? max_keys : 1;
	return t;
}

static void lunlink(struct throttle *t, struct tentry *x)
{
	if (x->lprev)
		x->lprev->lnext = x->lnext;
	else
		t->lhead = x->lnext;
	if (x->lnext)
		x->lnext->lprev = x->lprev;
	else
		t->ltail = x->lprev;
	x->lprev = x->lnext = NULL;
}

static void lpush_front(struct throttle *t, struct tentry *x)
{
	x->lnext = t->lhead;
	x->lprev = NULL;
	if (t->lhead)
		t->lhead->lprev = x;
	t->lhead = x;
	if (!t->ltail)
		t->ltail = x;
}

static void tremove(struct throttle *t, struct tentry *x)
{
	struct tentry **pp = &t->buckets[thash(x->key)];
	while (*pp && *pp != x)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = x->hnext;
	lunlink(t, x);
	free(x->key);
	free(x->times);
	free(x);
	t->size--;
}

struct throttle *throttle_free(struct throttle *t)
{
	if (!t)
		return NULL;
	while (t->lhead)
		tremove(t, t->lhead);
	free(t);
	return NULL;
}

static struct tentry *tfind(struct throttle *t, const char *key)
{
	for (struct tentry *x = t->buckets[thash(key)]; x; x = x->hnext)
		if (!strcmp(x->key, key))
			return x;
	return NULL;
}

/* Drop failures older than the window; frees x (returns NULL) when none remain. */
static struct tentry *tprune(struct throttle *t, struct tentry *x, int64_t window_ms,
			     int64_t now_ms)
{
	size_t keep = 0;
	while (keep < x->n && x->times[keep] <= now_ms - window_ms)
		keep++;
	if (keep) {
		memmove(x->times, x->times + keep, (x->n - keep) * sizeof(int64_t));
		x->n -= keep;
	}
	if (x->n == 0) {
		tremove(t, x);
		return NULL;
	}
	return x;
}

int64_t throttle_check(struct throttle *t, const char *key, int64_t limit, int64_t window_ms,
		       int64_t now_ms)
{
	struct tentry *x = tfind(t, key);
	if (!x || !(x = tprune(t, x, window_ms, now_ms)))
		return 0;
	if ((int64_t)x->n < limit)
		return 0;
	/* the (n - limit + 1)-th oldest failure must leave the window */
	int64_t until = x->times[x->n - (size_t)limit] + window_ms;
	int64_t secs = (until - now_ms + 999) / 1000;
	return secs < 1 ? 1 : secs;
}

void throttle_fail(struct throttle *t, const char *key, int64_t limit, int64_t window_ms,
		   int64_t now_ms)
{
	struct tentry *x = tfind(t, key);
	if (x)
		x = tprune(t, x, window_ms, now_ms);
	if (!x) {
		while (t->size >= t->max_keys && t->ltail)
			tremove(t, t->ltail);
		x = xcalloc(1, sizeof(*x));
		x->key = xstrdup(key);
		size_t b = thash(key);
		x->hnext = t->buckets[b];
		t->buckets[b] = x;
		t->size++;
	} else {
		lunlink(t, x);
	}
	lpush_front(t, x);
	/* only the newest `limit` failures matter */
	size_t lim = limit < 1 ? 1 : (size_t)limit;
	if (x->n >= lim) {
		memmove(x->times, x->times + (x->n - lim + 1), (lim - 1) * sizeof(int64_t));
		x->n = lim - 1;
	}
	if (x->n == x->cap) {
		x->cap = x->cap ? x->cap * 2 : 4;
		x->times = xrealloc(x->times, x->cap * sizeof(int64_t));
	}
	x->times[x->n++] = now_ms;
}

void throttle_forget(struct throttle *t, const char *key, int64_t at_ms)
{
	struct tentry *x = tfind(t, key);
	if (!x)
		return;
	for (size_t i = x->n; i-- > 0;)
		if (x->times[i] == at_ms) {
			memmove(x->times + i, x->times + i + 1, (x->n - i - 1) * sizeof(int64_t));
			if (--x->n == 0)
				tremove(t, x);
			return;
		}
}

void throttle_reset(struct throttle *t, const char *key)
{
	struct tentry *x = tfind(t, key);
	if (x)
		tremove(t, x);
}

size_t throttle_size(const struct throttle *t)
{
	return t->size;
}
