#include "bad_plugins.h"
BP_EXPORT int not_the_entry_point(void);
int not_the_entry_point(void)
{
	return bp_run(NULL);
}
