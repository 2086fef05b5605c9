/* A program that uses an installed bioesp: built once with pkg-config, once with find_package. */
#include <bioesp.h>
#include <stdio.h>

int main(void) {
  if (bioesp_check_version(BIOESP_VERSION_NUMBER) != BIOESP_OK) {
    fprintf(stderr, "%s\n", bioesp_last_error());
    return 1;
  }
  printf("consumer linked bioesp %s\n", bioesp_version_string());
  return 0;
}
