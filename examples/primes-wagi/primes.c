// primes-wagi: a WAGI module with an expensive initialisation, pre-initialised at deploy.
//
//   clang-16 --target=wasm32-wasi --sysroot=/usr -O2 primes.c -o primes-wagi.wasm
//
// `wizer-initialize` sieves every number below LIMIT (a 4 MB table). wisp runs it once, at deploy, and
// snapshots the memory it leaves behind (Wizer): every instance then starts with the table built, and a
// request only looks numbers up. A host that does not know the export still works: main() initialises
// on first use.
//
// GET /primes?n=1000  ->  "1000: not prime; 168 primes below it\n"
//
// The init must not read the environment or stdin: they belong to the request, and are not there at deploy.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIMIT 4000000

static unsigned char composite[LIMIT];
static unsigned primes_below[LIMIT / 1000 + 1]; // count of primes below k*1000
static int initialised;

__attribute__((export_name("wizer-initialize"))) void primes_init(void) {
  composite[0] = composite[1] = 1;
  for (unsigned i = 2; (unsigned long)i * i < LIMIT; i++)
    if (!composite[i])
      for (unsigned j = i * i; j < LIMIT; j += i) composite[j] = 1;
  unsigned count = 0;
  for (unsigned i = 0; i < LIMIT; i++) {
    if (i % 1000 == 0) primes_below[i / 1000] = count;
    if (!composite[i]) count++;
  }
  initialised = 1;
}

static unsigned count_below(unsigned n) {
  unsigned count = primes_below[n / 1000];
  for (unsigned i = n / 1000 * 1000; i < n; i++)
    if (!composite[i]) count++;
  return count;
}

int main(void) {
  if (!initialised) primes_init();
  const char *query = getenv("QUERY_STRING");
  const char *n_param = query ? strstr(query, "n=") : NULL;
  long n = n_param ? strtol(n_param + 2, NULL, 10) : 1000;
  if (n < 0 || n >= LIMIT) {
    printf("Status: 400\r\nContent-Type: text/plain\r\n\r\nn must be in 0..%d\n", LIMIT - 1);
    return 0;
  }
  printf("Content-Type: text/plain\r\n\r\n%ld: %s; %u primes below it\n", n, composite[n] ? "not prime" : "prime",
         count_below((unsigned)n));
  return 0;
}
