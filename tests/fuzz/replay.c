/* replay.c — runs a libFuzzer target over corpus files without libFuzzer.
 *
 * Usage: <prog> FILE_OR_DIR...  Directories are read one level deep. Exits
 * nonzero when no input was found; a failing input aborts in the target.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	struct err e;
	char *data;
	size_t len;

	if (file_read_all(path, &data, &len, &e) < 0) {
		fprintf(stderr, "replay: %s\n", e.msg);
		return -1;
	}
	LLVMFuzzerTestOneInput((const uint8_t *)data, len);
	free(data);
	return 0;
}

static int run_dir(const char *dir, int *count)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int rc = 0;

	if (!d) {
		perror(dir);
		return -1;
	}
	while ((de = readdir(d))) {
		struct stat st;
		char *path;

		if (de->d_name[0] == '.')
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			if (run_file(path) < 0)
				rc = -1;
			else
				(*count)++;
		}
		free(path);
	}
	closedir(d);
	return rc;
}

int main(int argc, char **argv)
{
	int i, count = 0, rc = 0;

	for (i = 1; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st) < 0) {
			perror(argv[i]);
			rc = -1;
		} else if (S_ISDIR(st.st_mode)) {
			if (run_dir(argv[i], &count) < 0)
				rc = -1;
		} else if (run_file(argv[i]) < 0) {
			rc = -1;
		} else {
			count++;
		}
	}
	printf("replay: %d inputs\n", count);
	return rc < 0 || count == 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
