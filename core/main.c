/* main.c — the ghl-agent command line: dispatches to each command. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	puts("ghl-agent: under construction");
	return 0;
}
