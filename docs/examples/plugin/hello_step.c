/* hello_step.c — an out-of-tree step plugin, built against the installed ABI
 * header only:
 *
 *   cc $(pkg-config --cflags ghl-agent-plugin) -shared -fPIC \
 *      -o hello_step.so hello_step.c
 *   cp hello_step.so "$(pkg-config --variable=plugindir ghl-agent-plugin)"
 *
 * It registers HELLO, which greets the client by name and, when configured
 * with {"lookup": true}, reads the new location back from GHL (a non-blocking
 * request: run() returns WAIT and is called again with the answer). */
#include <ghl_step.h>
#include <string.h>

static const struct ghl_host_api *host;

static int hello_run(ghl_step_ctx *ctx)
{
	switch (host->phase(ctx)) {
	case 0: {
		const char *name = host->get(ctx, GHL_SRC_CLIENT, "name");
		host->set_output(ctx, "greeting",
				 host->quote(ctx, host->format(ctx, "Hello, %s!", name ? name : "?")));
		const char *lookup = host->get(ctx, GHL_SRC_CONFIG, "lookup");
		const char *loc = host->get(ctx, GHL_SRC_OUTPUTS, "location_id");
		if (!lookup || strcmp(lookup, "true") || !loc)
			return GHL_STEP_DONE;
		host->set_phase(ctx, 1);
		host->request(ctx, "GET", host->format(ctx, "/locations/%s", loc), NULL, NULL,
			      GHL_TOKEN_AGENCY);
		return GHL_STEP_WAIT;
	}
	case 1:
		if (host->response_status(ctx) != 200)
			return host->fail_from_response(ctx, "reading the location");
		host->set_output(ctx, "location_name",
				 host->quote(ctx, host->get(ctx, GHL_SRC_RESPONSE, "location.name")));
		return GHL_STEP_DONE;
	}
	return host->fail(ctx, 0, "unexpected phase %d", host->phase(ctx));
}

static int hello_init(const struct ghl_host_api *h, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	host = h;
	return 0;
}

static const struct ghl_step_def steps[] = {
	{"HELLO", "1.0.0",
	 "{\"type\":\"object\",\"properties\":{\"lookup\":{\"type\":\"boolean\"}},"
	 "\"additionalProperties\":false}",
	 "greets the client (an out-of-tree example)", hello_run, NULL},
};

static const struct ghl_plugin plugin = {
	GHL_PLUGIN_HEADER, "hello", hello_init, steps, sizeof(steps) / sizeof(steps[0]),
};

__attribute__((visibility("default"))) const struct ghl_plugin *ghl_plugin_entry(void)
{
	return &plugin;
}
