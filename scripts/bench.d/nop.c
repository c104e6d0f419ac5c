/* nop.c - the floor for `luasvc run` start-to-exit: a C program that does nothing. */
int main(void) { return 0; }
