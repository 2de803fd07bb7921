// hello-wagi: a WAGI handler (WebAssembly Gateway Interface, i.e. CGI for
// wasm).  This is a plain WASI preview1 *command module* (`_start`), not a
// component:
//   clang-16 --target=wasm32-wasi --sysroot=/usr -O2 hello.c -o hello-wagi.wasm
//
// The request arrives CGI-style: REQUEST_METHOD, PATH_INFO, QUERY_STRING and
// HTTP_* variables in the environment, the request body on stdin.  The
// response goes to stdout: header lines, an empty line, then the body.
//
// The body is exactly "Hello from WAGI!\n"; the method and path the guest
// saw are reported in the X-Wagi-Method / X-Wagi-Path response headers and in
// a log line on stderr.
#include <stdio.h>
#include <stdlib.h>

static const char *env_or(const char *name, const char *fallback) {
  const char *value = getenv(name);
  return value ? value : fallback;
}

int main(void) {
  const char *method = env_or("REQUEST_METHOD", "GET");
  const char *path = env_or("PATH_INFO", "/");

  // Drain the request body (a GET has none) so the host never blocks on us.
  char buf[4096];
  size_t body_bytes = 0, n;
  while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0) body_bytes += n;

  fprintf(stderr, "hello-wagi: %s %s (%zu body bytes, user-agent: %s)\n", method, path,
          body_bytes, env_or("HTTP_USER_AGENT", "-"));

  printf("Content-Type: text/plain\n");
  printf("X-Wagi-Method: %s\n", method);
  printf("X-Wagi-Path: %s\n", path);
  printf("\n");
  printf("Hello from WAGI!\n");
  return 0;
}
