/* nop.c - the floor for `luasvc run` start: a C program that does nothing
 * but, given an argument, write it to stderr (the floor of exec to ready). */
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc > 1 && write(2, argv[1], strlen(argv[1])) < 0)
        return 1;
    return 0;
}
