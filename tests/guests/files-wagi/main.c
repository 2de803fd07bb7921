// files-wagi (test fixture): a WAGI module that reads a file its function mounts, through plain stdio.
//   ?PATH          answers with the file at PATH (absolute guest path)
//   ?write=PATH    tries to open PATH for writing
// A refusal is answered as "<what> refused: <strerror>", with 200.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  const char *q = getenv("QUERY_STRING");
  printf("Content-Type: text/plain\n\n");
  if (!q || !*q) {
    printf("no path\n");
    return 0;
  }
  if (!strncmp(q, "write=", 6)) {
    FILE *f = fopen(q + 6, "w");
    if (f) printf("opened for writing: the sandbox let a write through\n");
    else printf("fopen for writing refused: %s\n", strerror(errno));
    return 0;
  }
  FILE *f = fopen(q, "r");
  if (!f) {
    printf("fopen refused: %s\n", strerror(errno));
    return 0;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stdout);
  fclose(f);
  return 0;
}
