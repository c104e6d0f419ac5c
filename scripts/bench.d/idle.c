/* idle.c - the floor for RSS and idle CPU: a C program that just sleeps. */
#include <unistd.h>
int main(void) { pause(); return 0; }
