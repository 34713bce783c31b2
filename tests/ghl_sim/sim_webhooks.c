/* sim_webhooks.c — the Ed25519 webhook key and signed deliveries.
 *
 * POST /_sim/webhooks/send builds the event body (GHL_API.md "Webhooks"),
 * signs the raw bytes with Ed25519 (x-ghl-signature, base64) and POSTs them
 * with evhttp's async client; the admin request is answered when the target
 * answers (or the delivery fails, 502), with the body and signature sent.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <openssl/pem.h>

#include "sim.h"

struct delivery {
	struct sim *s;
	struct evhttp_request *admin_req; /* the /_sim/webhooks/send request to answer */
	struct evhttp_connection *conn;
	char *url;
	char *body;
	char *signature;
	struct event *free_ev; /* frees conn on the next loop turn, once answered */
};

/* ---- key ---- */

static EVP_PKEY *key_generate(struct sim *s)
{
	if (s->cfg.seeded) {
		/* derived from the seed alone, so --print-webhook-key matches a run with the same --seed */
		unsigned char raw[32];
		uint64_t x = (uint64_t)s->cfg.seed ^ 0x5eedc0deULL;
		for (size_t i = 0; i < sizeof raw; i += 8) {
			uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
			z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
			z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
			z ^= z >> 31;
			memcpy(raw + i, &z, 8);
		}
		return EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw, sizeof raw);
	}
	return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
}

static int key_save(EVP_PKEY *k, const char *path, struct err *e)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(e, "cannot create %s: %s", path, strerror(errno));
	FILE *f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return err_set(e, "cannot write %s: %s", path, strerror(errno));
	}
	int ok = PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1;
	if (fclose(f) != 0)
		ok = 0;
	return ok ? 0 : err_set(e, "cannot write %s", path);
}

int sim_webhook_key_load(struct sim *s, struct err *e)
{
	const char *path = s->cfg.webhook_key_file;
	if (path && *path) {
		FILE *f = fopen(path, "re");
		if (f) {
			s->webhook_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
			fclose(f);
			if (!s->webhook_key ||
			    EVP_PKEY_get_base_id(s->webhook_key) != EVP_PKEY_ED25519)
				return err_set(e, "%s: not an Ed25519 private key in PEM", path);
			return 0;
		}
		if (errno != ENOENT)
			return err_set(e, "cannot read %s: %s", path, strerror(errno));
	}
	s->webhook_key = key_generate(s);
	if (!s->webhook_key)
		return err_set(e, "cannot create an Ed25519 key");
	if (path && *path)
		return key_save(s->webhook_key, path, e);
	return 0;
}

int sim_webhook_print_key(struct sim *s, struct err *e)
{
	if (PEM_write_PUBKEY(stdout, s->webhook_key) != 1)
		return err_set(e, "cannot write the public key");
	return fflush(stdout) == 0 ? 0 : err_set(e, "stdout: %s", strerror(errno));
}

static char *sign_b64(EVP_PKEY *k, const char *body, size_t len)
{
	unsigned char sig[64];
	size_t siglen = sizeof sig;
	char *out = NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (md && EVP_DigestSignInit(md, NULL, NULL, NULL, k) == 1 &&
	    EVP_DigestSign(md, sig, &siglen, (const unsigned char *)body, len) == 1)
		out = sim_base64(sig, siglen);
	EVP_MD_CTX_free(md);
	return out;
}

/* ---- delivery ---- */

static void delivery_free(struct delivery *d)
{
	if (d->free_ev)
		event_free(d->free_ev);
	free(d->url);
	free(d->body);
	free(d->signature);
	free(d);
}

static void reply_json(struct evhttp_request *req, int status, struct buf *b)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "application/json");
	evbuffer_add(evhttp_request_get_output_buffer(req), b->data, b->len);
	evhttp_send_reply(req, status, status == 200 ? "OK" : "Bad Gateway", NULL);
}

static void on_free(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct delivery *d = arg;
	vec_remove(&d->s->deliveries, d);
	evhttp_connection_free(d->conn);
	delivery_free(d);
}

static void on_delivered(struct evhttp_request *resp, void *arg)
{
	struct delivery *d = arg;
	int code = resp ? evhttp_request_get_response_code(resp) : 0;
	struct buf b;
	struct jw w;
	buf_init(&b);
	jw_init(&w, &b);
	jw_object_begin(&w);
	jw_key(&w, "delivered");
	jw_bool(&w, code > 0);
	jw_key(&w, "status");
	jw_int(&w, code);
	jw_key(&w, "url");
	jw_string(&w, d->url);
	jw_key(&w, "body");
	jw_string(&w, d->body);
	jw_key(&w, "signature");
	jw_string(&w, d->signature);
	if (resp && code > 0) {
		struct evbuffer *in = evhttp_request_get_input_buffer(resp);
		size_t n = evbuffer_get_length(in);
		if (n > 64 * 1024)
			n = 64 * 1024;
		jw_key(&w, "response");
		const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
		char *text = xstrndup(p ? p : "", p ? n : 0);
		jw_string(&w, text);
		free(text);
	}
	jw_object_end(&w);
	if (code > 0)
		d->s->stats.webhooks_sent++;
	reply_json(d->admin_req, code > 0 ? 200 : 502, &b);
	buf_clear(&b);
	d->admin_req = NULL;
	/* libevent still uses the connection after this callback returns (and
	 * 2.1's free_on_completion leaks it when the connect fails), so it is
	 * freed on the next loop iteration instead. */
	d->free_ev = evtimer_new(d->s->base, on_free, d);
	struct timeval now = {0, 0};
	evtimer_add(d->free_ev, &now);
}

static const char *build_body(struct sim_ctx *c, struct buf *b, const char *type)
{
	struct sim *s = c->s;
	const struct json *in = c->body;
	const char *company = json_get_str(in, "companyId");
	const char *location = json_get_str(in, "locationId");
	const char *ts_over = json_get_str(in, "timestamp");
	const char *id_over = json_get_str(in, "webhookId");
	char ts[32], wid[40];
	if (str_eq(type, "INSTALL") && !company)
		return "INSTALL needs companyId";
	if (str_eq(type, "UNINSTALL") && !company && !location)
		return "UNINSTALL needs companyId or locationId";
	struct sim_location *loc = location ? sim_location_get(s, location) : NULL;
	int loc_event = str_eq(type, "LocationCreate") || str_eq(type, "LocationUpdate");
	if (loc_event && !loc)
		return "LocationCreate/LocationUpdate need the locationId of an existing location";
	sim_iso_time(now_wall_ms(), ts);
	sim_new_trace_id(s, wid);
	struct jw w;
	jw_init(&w, b);
	jw_object_begin(&w);
	jw_key(&w, "type");
	jw_string(&w, type);
	if (loc_event) {
		jw_key(&w, "id");
		jw_string(&w, loc->id);
		jw_key(&w, "companyId");
		jw_string(&w, loc->company_id);
		jw_key(&w, "name");
		jw_string(&w, json_get_str(loc->obj, "name"));
		jw_key(&w, "email");
		jw_string(&w, json_get_str(loc->obj, "email"));
	} else {
		jw_key(&w, "appId");
		jw_string(&w, s->cfg.client_id);
		if (company) {
			jw_key(&w, "companyId");
			jw_string(&w, company);
		}
		if (location) {
			jw_key(&w, "locationId");
			jw_string(&w, location);
		}
		if (str_eq(type, "INSTALL")) {
			const char *user = json_get_str(in, "userId");
			char *uid = user ? NULL : sim_new_id(s);
			jw_key(&w, "userId");
			jw_string(&w, user ? user : uid);
			free(uid);
			jw_key(&w, "planId");
			jw_string(&w, json_get_str(in, "planId") ? json_get_str(in, "planId")
								 : "sim-plan-001");
		}
	}
	jw_key(&w, "timestamp");
	jw_string(&w, ts_over ? ts_over : ts);
	jw_key(&w, "webhookId");
	jw_string(&w, id_over ? id_over : wid);
	jw_object_end(&w);
	return NULL;
}

static void send_error(struct sim_ctx *c, const char *msg)
{
	struct jw w;
	c->status = 400;
	buf_reset(&c->out);
	jw_init(&w, &c->out);
	jw_object_begin(&w);
	jw_key(&w, "error");
	jw_string(&w, msg);
	jw_object_end(&w);
}

void sim_h_webhook_send(struct sim_ctx *c)
{
	struct sim *s = c->s;
	if (sim_body_json(c) != 0)
		return;
	const char *url = json_get_str(c->body, "url");
	const char *type = json_get_str(c->body, "type");
	if (!url || !str_has_prefix(url, "http://")) {
		send_error(c, "url must be an http:// URL");
		return;
	}
	if (!str_eq(type, "INSTALL") && !str_eq(type, "UNINSTALL") &&
	    !str_eq(type, "LocationCreate") && !str_eq(type, "LocationUpdate")) {
		send_error(c, "type must be INSTALL, UNINSTALL, LocationCreate or LocationUpdate");
		return;
	}
	struct evhttp_uri *u = evhttp_uri_parse(url);
	const char *host = u ? evhttp_uri_get_host(u) : NULL;
	if (!host || !*host) {
		evhttp_uri_free(u);
		send_error(c, "url has no host");
		return;
	}
	struct buf body;
	buf_init(&body);
	const char *bad = build_body(c, &body, type);
	if (bad) {
		buf_clear(&body);
		evhttp_uri_free(u);
		send_error(c, bad);
		return;
	}
	char *sig = sign_b64(s->webhook_key, body.data, body.len);
	if (!sig) {
		buf_clear(&body);
		evhttp_uri_free(u);
		send_error(c, "signing failed");
		return;
	}
	int port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 80;
	const char *path = evhttp_uri_get_path(u);
	const char *query = evhttp_uri_get_query(u);
	char *target = xasprintf("%s%s%s", path && *path ? path : "/", query ? "?" : "",
				 query ? query : "");

	struct delivery *d = xcalloc(1, sizeof *d);
	d->s = s;
	d->admin_req = c->req;
	d->url = xstrdup(url);
	d->body = buf_take(&body);
	d->signature = sig;
	d->conn = evhttp_connection_base_new(s->base, NULL, host, (ev_uint16_t)port);
	evhttp_connection_set_timeout(d->conn, 10);
	struct evhttp_request *r = evhttp_request_new(on_delivered, d);
	struct evkeyvalq *h = evhttp_request_get_output_headers(r);
	evhttp_add_header(h, "Host", host);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "User-Agent", "ghl-sim");
	evhttp_add_header(h, "x-ghl-signature", sig);
	evbuffer_add(evhttp_request_get_output_buffer(r), d->body, strlen(d->body));
	vec_push(&s->deliveries, d);
	c->deferred = 1;
	if (evhttp_make_request(d->conn, r, EVHTTP_REQ_POST, target) != 0) {
		/* r was freed by libevent; answer now */
		c->deferred = 0;
		vec_remove(&s->deliveries, d);
		evhttp_connection_free(d->conn);
		delivery_free(d);
		send_error(c, "cannot start the delivery");
	}
	free(target);
	evhttp_uri_free(u);
}

void sim_webhooks_stop(struct sim *s)
{
	for (size_t i = 0; i < s->deliveries.n; i++) {
		struct delivery *d = s->deliveries.v[i];
		evhttp_connection_free(d->conn);
		if (d->admin_req && !evhttp_request_get_connection(d->admin_req))
			evhttp_request_free(d->admin_req);
		delivery_free(d);
	}
	vec_free(&s->deliveries);
}
