// badinit-wagi: a WAGI module whose initialisation export fails. A deploy must refuse it (every request
// would fail) and say why, with what it printed.
#include <stdio.h>

__attribute__((export_name("wizer-initialize"))) void init(void) {
  fprintf(stderr, "badinit: cannot load the configuration\n");
  __builtin_trap();
}

int main(void) {
  printf("Content-Type: text/plain\r\n\r\nunreachable\n");
  return 0;
}
