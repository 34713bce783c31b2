/* ghl_oauth.c — calls to GHL's OAuth token endpoints (/oauth/token for codes
 * and refresh tokens, /oauth/locationToken for a location's token), through
 * the client's ordinary request path.
 */
#include "ghl_client_int.h"

#include "json.h"

/* ---- OAuth ---- */

struct oauth_wait {
	ghl_oauth_fn cb;
	void *arg;
};

static void on_oauth_reply(void *arg, const struct ghl_response *res)
{
	struct oauth_wait w = *(struct oauth_wait *)arg;
	free(arg);
	struct ghl_response r = *res;
	struct ghl_token_set t;
	const struct ghl_token_set *tp = NULL;
	memset(&t, 0, sizeof t);
	t.expires_in = -1;
	if (res->outcome == GHL_OK) {
		const struct json *j = res->json;
		t.access_token = json_get_str(j, "access_token");
		t.refresh_token = json_get_str(j, "refresh_token");
		t.token_type = json_get_str(j, "token_type");
		t.scope = json_get_str(j, "scope");
		t.user_type = json_get_str(j, "userType");
		t.company_id = json_get_str(j, "companyId");
		t.location_id = json_get_str(j, "locationId");
		t.user_id = json_get_str(j, "userId");
		int64_t ei;
		if (json_get_int(j, "expires_in", &ei) == 0)
			t.expires_in = (long long)ei;
		if (t.access_token && *t.access_token) {
			tp = &t;
		} else {
			r.outcome = GHL_PERMANENT;
			r.message = "token reply without access_token";
		}
	}
	w.cb(w.arg, &r, tp);
}

static void form_add(struct buf *b, const char *key, const char *val)
{
	if (!val)
		return;
	char *enc = ghl_urlencode(val);
	if (b->len)
		buf_putc(b, '&');
	buf_puts(b, key);
	buf_putc(b, '=');
	buf_puts(b, enc);
	secret_free(enc);
}

static void oauth_send(struct ghl_client *c, struct ghl_request *req, struct buf *form,
		       ghl_oauth_fn cb, void *arg)
{
	struct oauth_wait *w = xmalloc(sizeof *w);
	w->cb = cb;
	w->arg = arg;
	req->method = "POST";
	req->form_body = buf_cstr(form);
	ghl_request_send(c, req, on_oauth_reply, w);
	if (form->data)
		crypto_wipe(form->data, form->cap);
	buf_clear(form);
}

void ghl_oauth_token(struct ghl_client *c, const struct ghl_oauth_form *f, ghl_oauth_fn cb,
		     void *arg)
{
	struct buf form;
	buf_init(&form);
	form_add(&form, "client_id", c->client_id);
	form_add(&form, "client_secret", c->client_secret);
	form_add(&form, "grant_type", f->grant_type);
	form_add(&form, "code", f->code);
	form_add(&form, "refresh_token", f->refresh_token);
	form_add(&form, "redirect_uri", f->redirect_uri);
	form_add(&form, "user_type", f->user_type);
	struct ghl_request req;
	memset(&req, 0, sizeof req);
	req.path = "/oauth/token";
	oauth_send(c, &req, &form, cb, arg);
}

void ghl_oauth_location_token(struct ghl_client *c, const char *agency_token,
			      const char *company_id, const char *location_id, ghl_oauth_fn cb,
			      void *arg)
{
	struct buf form;
	buf_init(&form);
	form_add(&form, "companyId", company_id);
	form_add(&form, "locationId", location_id);
	struct ghl_request req;
	memset(&req, 0, sizeof req);
	req.path = "/oauth/locationToken";
	req.token = agency_token;
	req.resource = company_id;
	oauth_send(c, &req, &form, cb, arg);
}
