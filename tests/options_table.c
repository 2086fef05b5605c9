/* Prints the library's options table as tab-separated lines — kind, name, flag, type, choices,
 * reason not exposed — for tests/options_coverage.py. */
#include <bioesp.h>
#include <stdio.h>

int main(void) {
  for (int k = 0; bioesp_options_kind_name((bioesp_options_kind)k); ++k) {
    size_t n = 0;
    if (bioesp_option_count((bioesp_options_kind)k, &n) != BIOESP_OK) return 1;
    for (size_t i = 0; i < n; ++i) {
      bioesp_option o = {0};
      o.struct_size = sizeof o;
      if (bioesp_option_at((bioesp_options_kind)k, i, &o) != BIOESP_OK) return 1;
      printf("%s\t%s\t%s\t%d\t%s\t%s\n", bioesp_options_kind_name((bioesp_options_kind)k), o.name, o.flag ? o.flag : "",
             (int)o.type, o.choices ? o.choices : "", o.not_exposed ? o.not_exposed : "");
    }
  }
  return 0;
}
