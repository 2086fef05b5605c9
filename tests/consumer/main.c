/* A program that uses an installed bioesp: built once with pkg-config, once with find_package. */
#include <bioesp.h>
#include <stdio.h>

int main(void) {
  if (bioesp_check_version(BIOESP_VERSION_NUMBER) != BIOESP_OK) {
    fprintf(stderr, "%s\n", bioesp_last_error());
    return 1;
  }
  printf("consumer linked bioesp %s\n", bioesp_version_string());
  /* The embedded model installed beside the library (install_consumers checks where). */
  const char* model = bioesp_embedded_model();
  if (!model) {
    fprintf(stderr, "the embedded model was not found\n");
    return 1;
  }
  printf("embedded model: %s\n", model);
  return 0;
}
