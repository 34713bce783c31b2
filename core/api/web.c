/* web.c — the dashboard's static files: `GET /` answers web/index.html and
 * `GET /web/{file}` the other files of the folder (flat: no sub-folders).
 *
 * Files are read per request from `web_dir` (config), else the shipped web/
 * folder (paths_data_dir). They are a few KiB each, so a read on the loop is
 * cheap; a file above WEB_MAX_FILE is refused rather than read.
 *
 * Safety: a name is one path segment of [A-Za-z0-9._-], not starting with '.'
 * (so no "..", no hidden files, no '/' or NUL), with a known extension; the
 * file is opened with O_NOFOLLOW (no symlink may lead out of the folder) and
 * must be a regular file. Everything else answers 404 in the API error shape;
 * a raw path carrying an encoded NUL or a dot segment answers 400.
 * Every answer carries a strict Content-Security-Policy and X-Frame-Options. */
#include <errno.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "paths.h"
#include "util.h"

#define WEB_MAX_FILE (4 * 1024 * 1024)
#define WEB_MAX_NAME 100

/* Everything from our own origin only; no inline script or style, no
 * plugins, no framing, no <base> tricks, forms post only to us. */
static const char csp[] = "default-src 'self'; script-src 'self'; style-src 'self'; "
			  "img-src 'self'; connect-src 'self'; font-src 'self'; "
			  "object-src 'none'; base-uri 'none'; form-action 'self'; "
			  "frame-ancestors 'none'";

static const struct {
	const char *ext;
	const char *type;
} types[] = {
	{".html", "text/html; charset=utf-8"},
	{".js", "text/javascript; charset=utf-8"},
	{".css", "text/css; charset=utf-8"},
	{".svg", "image/svg+xml"},
	{".png", "image/png"},
	{".ico", "image/x-icon"},
	{".json", "application/json"},
	{".txt", "text/plain; charset=utf-8"},
};

/* The Content-Type for name's extension, or NULL (not served). */
static const char *web_content_type(const char *name)
{
	const char *dot = strrchr(name, '.');
	if (!dot)
		return NULL;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(dot, types[i].ext))
			return types[i].type;
	return NULL;
}

/* 1 when name is a plain file name we may serve (see the top). */
static int web_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > WEB_MAX_NAME || name[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return 0;
	}
	return strstr(name, "..") == NULL;
}

/* 1 when the path has a dot segment ("..", ".", also when sent as %2e%2e)
 * or the undecoded path an encoded NUL (the decoded one stops at it). */
static int raw_path_suspicious(struct http_ctx *c)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(c->req);
	const char *raw = uri ? evhttp_uri_get_path(uri) : NULL;
	if (!raw)
		return 0;
	if (strstr(raw, "%00"))
		return 1;
	for (const char *seg = strchr(c->path, '/'); seg; seg = strchr(seg + 1, '/'))
		if (!strncmp(seg, "/..", 3) || !strncmp(seg, "/./", 3) || !strcmp(seg, "/."))
			return 1;
	return 0;
}

static void add_headers(struct http_ctx *c)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
	evhttp_add_header(h, "Content-Security-Policy", csp);
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	evhttp_add_header(h, "Referrer-Policy", "same-origin");
	evhttp_add_header(h, "Cross-Origin-Opener-Policy", "same-origin");
	evhttp_add_header(h, "Cross-Origin-Resource-Policy", "same-origin");
}

static void not_found(struct http_ctx *c, const char *name)
{
	char msg[200];
	snprintf(msg, sizeof(msg), "no dashboard file named \"%.100s\"", name);
	add_headers(c);
	http_reply_error(c, 404, "not_found", msg, NULL);
}

/* The folder files come from (malloc'd). */
static char *web_dir(const struct app *app)
{
	const char *d = app && app->cfg ? app->cfg->web_dir : NULL;
	return d && d[0] ? xstrdup(d) : paths_data_dir("web");
}

/* Read dir/name into *out (malloc'd) with its stat; 0, or -1 with errno
 * (ENOENT for anything that is not a readable regular file of the folder). */
static int read_file(const char *dir, const char *name, char **out, struct stat *st)
{
	char *path = xasprintf("%s/%s", dir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	free(path);
	if (fd < 0)
		return -1;
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode) || st->st_size > WEB_MAX_FILE) {
		close(fd);
		errno = ENOENT;
		return -1;
	}
	size_t size = (size_t)st->st_size, got = 0;
	char *data = xmalloc(size + 1);
	while (got < size) {
		ssize_t n = read(fd, data + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got != size) {
		free(data);
		errno = EIO;
		return -1;
	}
	data[size] = '\0';
	*out = data;
	return 0;
}

static void serve_file(struct http_ctx *c, const char *name)
{
	const char *type = web_content_type(name);
	if (!web_name_ok(name) || !type) {
		not_found(c, name);
		return;
	}
	char *dir = web_dir(c->app);
	char *data = NULL;
	struct stat st;
	if (read_file(dir, name, &data, &st) != 0) {
		if (errno != ENOENT && errno != ELOOP && errno != ENOTDIR)
			log_warn("web: cannot read a dashboard file", "request_id", c->request_id,
				 "dir", dir, "file", name, "error", strerror(errno), NULL);
		free(dir);
		not_found(c, name);
		return;
	}
	free(dir);

	char etag[64];
	snprintf(etag, sizeof(etag), "\"%llx-%llx-%lx\"", (unsigned long long)st.st_size,
		 (unsigned long long)st.st_mtim.tv_sec, (unsigned long)st.st_mtim.tv_nsec);
	add_headers(c);
	struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
	/* Always revalidate: a new release is picked up at once, an unchanged
	 * file costs a 304. */
	evhttp_add_header(h, "Cache-Control", "no-cache");
	evhttp_add_header(h, "ETag", etag);
	const char *inm = evhttp_find_header(evhttp_request_get_input_headers(c->req),
					     "If-None-Match");
	if (inm && !strcmp(inm, etag))
		http_reply(c, 304, NULL, NULL, 0);
	else
		http_reply(c, 200, type, data, (size_t)st.st_size);
	free(data);
}

static void h_index(struct http_ctx *c)
{
	serve_file(c, "index.html");
}

static void h_file(struct http_ctx *c)
{
	if (raw_path_suspicious(c)) {
		add_headers(c);
		http_reply_error(c, 400, "bad_path", "the path has a dot segment or a NUL byte",
				 NULL);
		return;
	}
	serve_file(c, c->nparams > 0 ? c->params[0] : "");
}

static const struct http_route web_routes[] = {
	{"GET", "/", h_index},
	{"GET", "/web/{file}", h_file},
};

const struct route_table web_route_table = {web_routes, sizeof(web_routes) / sizeof(web_routes[0])};
