// flood-wagi (test fixture): a WAGI module that prints a response of QUERY_STRING bytes (default 1 MiB),
// to run into the function's limits.max_output_bytes.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  const char *q = getenv("QUERY_STRING");
  long n = (q && *q) ? atol(q) : 1L << 20;
  printf("Content-Type: text/plain\n\n");
  char chunk[4096];
  memset(chunk, 'x', sizeof(chunk));
  while (n > 0) {
    long k = n < (long)sizeof(chunk) ? n : (long)sizeof(chunk);
    fwrite(chunk, 1, (size_t)k, stdout);
    n -= k;
  }
  return 0;
}
