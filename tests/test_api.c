/* The C ABI's conventions: version checks, status strings, NULL handling, options structs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <bioesp.h>

#include "support/testutil.h"

static void test_version(void** state) {
  (void)state;
  assert_int_equal(bioesp_version(), BIOESP_VERSION_NUMBER);
  char want[32];
  snprintf(want, sizeof want, "%d.%d.%d", BIOESP_VERSION_MAJOR, BIOESP_VERSION_MINOR, BIOESP_VERSION_PATCH);
  assert_string_equal(bioesp_version_string(), want);
  assert_int_equal(bioesp_check_version(BIOESP_VERSION_NUMBER), BIOESP_OK);
  /* a header from a newer minor or another major does not match this library */
  assert_int_equal(bioesp_check_version(BIOESP_VERSION_NUMBER + 100), BIOESP_ERR_UNSUPPORTED);
  assert_non_null(strstr(bioesp_last_error(), "does not match"));
  assert_int_equal(bioesp_check_version(BIOESP_VERSION_NUMBER + 10000), BIOESP_ERR_UNSUPPORTED);
}

static void test_status_strings(void** state) {
  (void)state;
  for (int s = BIOESP_OK; s <= BIOESP_ERR_INTERNAL; ++s) {
    const char* text = bioesp_status_string((bioesp_status)s);
    assert_non_null(text);
    assert_true(strlen(text) > 1);
    assert_string_not_equal(text, "unknown status");
  }
  assert_string_equal(bioesp_status_string((bioesp_status)999), "unknown status");
}

static void test_null_arguments(void** state) {
  (void)state;
  bioesp_weights* w = NULL;
  assert_int_equal(bioesp_weights_open(NULL, NULL, &w), BIOESP_ERR_INVALID_ARGUMENT);
  assert_true(strlen(bioesp_last_error()) > 0);
  assert_int_equal(bioesp_weights_open("x", NULL, NULL), BIOESP_ERR_INVALID_ARGUMENT);
  size_t n;
  assert_int_equal(bioesp_weights_count(NULL, &n), BIOESP_ERR_INVALID_ARGUMENT);
  bioesp_weights_close(NULL);
  bioesp_string_free(NULL);
  /* a successful call clears the message */
  assert_int_equal(bioesp_check_version(BIOESP_VERSION_NUMBER), BIOESP_OK);
  assert_string_equal(bioesp_last_error(), "");
}

static void test_hub_arguments(void** state) {
  (void)state;
  char* path = (char*)"untouched";
  assert_int_equal(bioesp_pull(NULL, &path), BIOESP_ERR_INVALID_ARGUMENT);
  assert_null(path);
  bioesp_pull_options po;
  bioesp_pull_options_init(&po);
  assert_int_equal(po.max_retries, 6);
  assert_int_equal(bioesp_pull(&po, &path), BIOESP_ERR_INVALID_ARGUMENT); /* no repo */
  po.repo = "not a repository id";
  assert_int_equal(bioesp_pull(&po, &path), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), "ORG/NAME"));
  /* offline with an empty cache: not found, and it says where it looked */
  po.repo = "CompVis/stable-diffusion-v1-4";
  po.offline = 1;
  po.cache_dir = "/nonexistent/bioesp-cache";
  assert_int_equal(bioesp_pull(&po, &path), BIOESP_ERR_NOT_FOUND);
  assert_non_null(strstr(bioesp_last_error(), "/nonexistent/bioesp-cache"));
  assert_null(path);

  bioesp_push_options pu;
  bioesp_push_options_init(&pu);
  assert_int_equal(bioesp_push(&pu, NULL), BIOESP_ERR_INVALID_ARGUMENT); /* no path, no repo */
  pu.path = "/nonexistent/lora.safetensors";
  pu.repo = "ana/criaturas";
  pu.token = "hf_x";
  assert_int_equal(bioesp_push(&pu, NULL), BIOESP_ERR_NOT_FOUND);
  pu.repo = "ana/criaturas@dev";
  assert_int_equal(bioesp_push(&pu, NULL), BIOESP_ERR_INVALID_ARGUMENT);
}

/* An options struct from an older header is shorter: fields past its struct_size keep their
 * defaults. Reading config_dir (a folder whose UNet config a single file cannot take) fails; not
 * reading it infers the single file's architecture from its shapes. */
static void test_options_struct_size(void** state) {
  (void)state;
  bioesp_weights_options o;
  bioesp_weights_options_init(&o);
  assert_int_equal(o.struct_size, sizeof o);
  assert_null(o.variant);
  assert_int_equal(o.to_diffusers, 0);
  o.struct_size = 1; /* nonsense size */
  bioesp_weights* w = NULL;
  assert_int_equal(bioesp_weights_open("x", &o, &w), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), "struct_size"));
  const char* single = path_join(ref_dir(), "golden/tiny-sd1/tiny-sd1.single_file.safetensors");
  bioesp_weights_options_init(&o);
  o.to_diffusers = 1;
  char configs[4096], unet[4096];
  snprintf(configs, sizeof configs, "%s", path_join(temp_dir(), "configs"));
  snprintf(unet, sizeof unet, "%s/unet", configs);
  mkdir(configs, 0755);
  mkdir(unet, 0755);
  const char* per_block = "{\"layers_per_block\": [1, 2]}";
  write_file(path_join(unet, "config.json"), per_block, strlen(per_block));
  o.config_dir = configs;
  assert_int_equal(bioesp_weights_open(single, &o, &w), BIOESP_ERR_UNSUPPORTED);
  assert_non_null(strstr(bioesp_last_error(), "layers_per_block"));
  assert_null(w);
  o.struct_size = offsetof(bioesp_weights_options, config_dir);
  if (bioesp_weights_open(single, &o, &w) != BIOESP_OK) fail_msg("%s", bioesp_last_error());
  size_t index;
  assert_int_equal(bioesp_weights_find(w, "unet", "conv_in.weight", &index), BIOESP_OK);

  /* Output structs: an older, shorter bioesp_tensor_info gets the fields it has and no more. */
  bioesp_tensor_info t;
  memset(&t, 0x5a, sizeof t);
  t.struct_size = offsetof(bioesp_tensor_info, dtype);
  assert_int_equal(bioesp_weights_tensor(w, index, &t), BIOESP_OK);
  assert_int_equal(t.struct_size, offsetof(bioesp_tensor_info, dtype));
  assert_string_equal(t.name, "conv_in.weight");
  assert_string_equal(t.component, "unet");
  assert_int_equal(((unsigned char*)&t.dtype)[0], 0x5a);
  assert_int_equal(((unsigned char*)&t.nbytes)[7], 0x5a);
  memset(&t, 0, sizeof t);
  t.struct_size = sizeof t;
  assert_int_equal(bioesp_weights_tensor(w, index, &t), BIOESP_OK);
  assert_int_equal(t.ndim, 4);
  assert_true(t.nbytes > 0);
  t.struct_size = 0;
  assert_int_equal(bioesp_weights_tensor(w, index, &t), BIOESP_ERR_INVALID_ARGUMENT);
  bioesp_lora_info lora;
  memset(&lora, 0x5a, sizeof lora);
  lora.struct_size = offsetof(bioesp_lora_info, rank);
  assert_int_equal(bioesp_weights_lora_info(w, &lora), BIOESP_OK);
  assert_int_equal(lora.flavour, BIOESP_LORA_NONE);
  assert_int_equal(((unsigned char*)&lora.rank)[0], 0x5a);
  bioesp_weights_close(w);
}

static void test_dtype_names(void** state) {
  (void)state;
  assert_string_equal(bioesp_dtype_name(BIOESP_DTYPE_BF16), "BF16");
  assert_string_equal(bioesp_dtype_name(BIOESP_DTYPE_BOOL), "BOOL");
  assert_string_equal(bioesp_dtype_name((bioesp_dtype)77), "?");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_version),       cmocka_unit_test(test_status_strings),
      cmocka_unit_test(test_null_arguments), cmocka_unit_test(test_options_struct_size),
      cmocka_unit_test(test_hub_arguments),
      cmocka_unit_test(test_dtype_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
