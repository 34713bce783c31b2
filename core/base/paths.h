/* paths.h — where the shipped files are: the build tree or the installed prefix. */
#ifndef GHL_PATHS_H
#define GHL_PATHS_H

/* Locate a shipped data folder ("migrations", "steps", "web", "seeds"):
 * the source tree when the binary runs from its build tree, else
 * <prefix>/share/ghl-agent/<name>. Returns a malloc'd path (it may not exist). */
char *paths_data_dir(const char *name);

/* Locate the built-in plugin folder: <build>/plugins when run from the build
 * tree, else <prefix>/lib/ghl-agent/plugins. malloc'd. */
char *paths_plugin_dir(void);

#endif
