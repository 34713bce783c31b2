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

char *paths_data_dir(const char *name)
{
	if (running_from_build_tree())
		return xasprintf("%s/%s", GHL_SOURCE_DIR, name);
	char *installed = xasprintf("%s/%s", GHL_DATADIR, name);
	if (is_dir(installed))
		return installed;
	free(installed);
	/* a binary copied elsewhere: fall back to the source tree it came from */
	return xasprintf("%s/%s", GHL_SOURCE_DIR, name);
}

char *paths_plugin_dir(void)
{
	if (running_from_build_tree())
		return xasprintf("%s/plugins", GHL_BUILD_DIR);
	return xasprintf("%s/plugins", GHL_LIBDIR);
}
