/* paths.c — find shipped files relative to the running binary. */
#include "paths.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* 1 when the running executable lies inside the build tree it was built in. */
static int running_from_build_tree(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return 0;
	exe[n] = '\0';
	char build[PATH_MAX];
	if (!realpath(GHL_BUILD_DIR, build))
		return 0;
	size_t bl = strlen(build);
	return strncmp(exe, build, bl) == 0 && exe[bl] == '/';
}

static int is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The installation prefix, from the executable's place: <prefix>/bin/ghl-agent.
 * Relocatable: `cmake --install build --prefix /opt/x` works without a rebuild. */
static char *exe_prefix(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (!slash)
		return NULL;
	*slash = '\0'; /* <prefix>/bin */
	slash = strrchr(exe, '/');
	if (!slash)
		return NULL;
	*slash = '\0';
	return xstrdup(exe[0] ? exe : "/");
}

/* First existing folder of: <exe prefix>/rel/sub, absolute/sub; else NULL. */
static char *installed_dir(const char *rel, const char *absolute, const char *sub)
{
	char *prefix = exe_prefix();
	if (prefix) {
		char *p = xasprintf("%s/%s/ghl-agent/%s", prefix, rel, sub);
		free(prefix);
		if (is_dir(p))
			return p;
		free(p);
	}
	char *p = xasprintf("%s/%s", absolute, sub);
	if (is_dir(p))
		return p;
	free(p);
	return NULL;
}

char *paths_data_dir(const char *name)
{
	if (running_from_build_tree())
		return xasprintf("%s/%s", GHL_SOURCE_DIR, name);
	char *p = installed_dir(GHL_REL_DATADIR, GHL_DATADIR, name);
	/* a binary copied elsewhere: fall back to the source tree it came from */
	return p ? p : xasprintf("%s/%s", GHL_SOURCE_DIR, name);
}

char *paths_plugin_dir(void)
{
	if (running_from_build_tree())
		return xasprintf("%s/plugins", GHL_BUILD_DIR);
	char *p = installed_dir(GHL_REL_LIBDIR, GHL_LIBDIR, "plugins");
	return p ? p : xasprintf("%s/plugins", GHL_LIBDIR);
}
