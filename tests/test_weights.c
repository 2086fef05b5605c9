/* Weight files against ../shared/reference through the public C API. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <bioesp.h>

#include "support/testutil.h"

static bioesp_weights* open_ok(const char* path, const bioesp_weights_options* o) {
  bioesp_weights* w = NULL;
  bioesp_status s = bioesp_weights_open(path, o, &w);
  if (s != BIOESP_OK) fail_msg("%s: %s", path, bioesp_last_error());
  return w;
}

static size_t count_of(const bioesp_weights* w) {
  size_t n = 0;
  assert_int_equal(bioesp_weights_count(w, &n), BIOESP_OK);
  return n;
}

static bioesp_tensor_info info_of(const bioesp_weights* w, size_t i) {
  bioesp_tensor_info t;
  memset(&t, 0, sizeof t);
  t.struct_size = sizeof t;
  assert_int_equal(bioesp_weights_tensor(w, i, &t), BIOESP_OK);
  return t;
}

static const char* meta(const bioesp_weights* w, const char* key) {
  size_t n = 0;
  bioesp_weights_metadata_count(w, &n);
  for (size_t i = 0; i < n; ++i) {
    const char *k, *v;
    assert_int_equal(bioesp_weights_metadata(w, i, &k, &v), BIOESP_OK);
    if (strcmp(k, key) == 0) return v;
  }
  return NULL;
}

/* Tensor i of a equals tensor j of b: same dtype, shape and bytes. */
static void assert_same_tensor(const bioesp_weights* a, size_t i, const bioesp_weights* b, size_t j) {
  bioesp_tensor_info x = info_of(a, i), y = info_of(b, j);
  if (x.dtype != y.dtype || x.ndim != y.ndim || x.nbytes != y.nbytes ||
      memcmp(x.shape, y.shape, sizeof x.shape) != 0)
    fail_msg("%s/%s and %s/%s differ in dtype or shape", x.component, x.name, y.component, y.name);
  void* p = malloc(x.nbytes + 1);
  void* q = malloc(y.nbytes + 1);
  assert_int_equal(bioesp_weights_read(a, i, x.dtype, p, x.nbytes), BIOESP_OK);
  assert_int_equal(bioesp_weights_read(b, j, y.dtype, q, y.nbytes), BIOESP_OK);
  if (memcmp(p, q, x.nbytes) != 0) fail_msg("values of %s and %s differ", x.name, y.name);
  free(p);
  free(q);
}

static void test_workshop_checkpoint(void** state) {
  (void)state;
  bioesp_weights* w = open_ok(path_join(ref_dir(), "workshop/model_lora.ckpt"), NULL);
  bioesp_weights_format f;
  bioesp_weights_format_of(w, &f);
  assert_int_equal(f, BIOESP_FORMAT_PYTORCH_ZIP);
  assert_int_equal(count_of(w), 256);
  assert_string_equal(meta(w, "epoch"), "200");
  assert_string_equal(meta(w, "global_step"), "200");
  for (size_t i = 0; i < 256; ++i) {
    bioesp_tensor_info t = info_of(w, i);
    assert_int_equal(t.dtype, BIOESP_DTYPE_F32);
    assert_int_equal(t.ndim, 2);
    assert_non_null(strstr(t.name, "model.diffusion_model.unet."));
    if (strstr(t.name, ".lora.down.weight")) assert_int_equal(t.shape[0], 4);
    else if (strstr(t.name, ".lora.up.weight")) assert_int_equal(t.shape[1], 4);
    else fail_msg("unexpected key %s", t.name);
    /* cross-attention k/v down-projections read the 768-wide CLIP states */
    if (strstr(t.name, "attn2.to_k.lora.down") || strstr(t.name, "attn2.to_v.lora.down"))
      assert_int_equal(t.shape[1], 768);
  }
  bioesp_lora_info lora;
  memset(&lora, 0, sizeof lora);
  lora.struct_size = sizeof lora;
  assert_int_equal(bioesp_weights_lora_info(w, &lora), BIOESP_OK);
  assert_int_equal(lora.flavour, BIOESP_LORA_LEGACY_CKPT);
  assert_int_equal(lora.rank, 4);
  assert_int_equal(lora.num_targets, 128);
  bioesp_weights_close(w);
}

static void test_legacy_lora_equals_diffusers(void** state) {
  (void)state;
  bioesp_weights* ckpt = open_ok(path_join(ref_dir(), "golden/tiny-sd1/lora/legacy_lora.ckpt"), NULL);
  bioesp_weights* st = open_ok(path_join(ref_dir(), "golden/tiny-sd1/lora/pytorch_lora_weights.safetensors"), NULL);
  size_t n = count_of(ckpt);
  assert_int_equal(n, count_of(st));
  assert_true(n > 0);
  const char* prefix = "model.diffusion_model.";
  for (size_t i = 0; i < n; ++i) {
    bioesp_tensor_info t = info_of(ckpt, i);
    assert_memory_equal(t.name, prefix, strlen(prefix));
    size_t j;
    if (bioesp_weights_find(st, NULL, t.name + strlen(prefix), &j) != BIOESP_OK)
      fail_msg("%s has no counterpart: %s", t.name, bioesp_last_error());
    assert_same_tensor(ckpt, i, st, j);
  }
  bioesp_weights_close(ckpt);
  bioesp_weights_close(st);
}

static void test_single_file_equals_folder(void** state) {
  (void)state;
  bioesp_weights_options o;
  bioesp_weights_options_init(&o);
  o.to_diffusers = 1;
  const char* folder = path_join(ref_dir(), "models/tiny-sd1");
  o.config_dir = folder;
  bioesp_weights* single = open_ok(path_join(ref_dir(), "golden/tiny-sd1/tiny-sd1.single_file.safetensors"), &o);
  bioesp_weights* diffusers = open_ok(folder, NULL);
  size_t n = count_of(diffusers);
  assert_int_equal(count_of(single), n);
  for (size_t i = 0; i < n; ++i) {
    bioesp_tensor_info a = info_of(single, i), b = info_of(diffusers, i);
    assert_string_equal(a.component, b.component);
    assert_string_equal(a.name, b.name);
    assert_same_tensor(single, i, diffusers, i);
  }
  bioesp_weights_close(single);
  /* the same without configs: the layout is inferred from the keys */
  o.config_dir = NULL;
  single = open_ok(path_join(ref_dir(), "golden/tiny-sd1/tiny-sd1.single_file.safetensors"), &o);
  assert_int_equal(count_of(single), n);
  for (size_t i = 0; i < n; ++i) assert_string_equal(info_of(single, i).name, info_of(diffusers, i).name);
  bioesp_weights_close(single);
  bioesp_weights_close(diffusers);
}

static void test_save_roundtrip(void** state) {
  (void)state;
  bioesp_weights* ckpt = open_ok(path_join(ref_dir(), "workshop/model_lora.ckpt"), NULL);
  const char* out = path_join(temp_dir(), "workshop.safetensors");
  assert_int_equal(bioesp_weights_save_safetensors(ckpt, NULL, out), BIOESP_OK);
  bioesp_weights* st = open_ok(out, NULL);
  assert_int_equal(count_of(st), 256);
  for (size_t i = 0; i < 256; ++i) assert_same_tensor(ckpt, i, st, i);
  assert_string_equal(meta(st, "epoch"), "200");
  bioesp_weights_close(st);
  /* a folder that does not exist: an I/O error and no file */
  const char* bad = path_join(temp_dir(), "missing/dir/x.safetensors");
  assert_int_equal(bioesp_weights_save_safetensors(ckpt, NULL, bad), BIOESP_ERR_IO);
  assert_false(file_exists(bad));
  bioesp_weights_close(ckpt);
  /* several components need a name */
  bioesp_weights* folder = open_ok(path_join(ref_dir(), "models/tiny-sd1"), NULL);
  assert_int_equal(bioesp_weights_save_safetensors(folder, NULL, out), BIOESP_ERR_INVALID_ARGUMENT);
  assert_int_equal(bioesp_weights_save_safetensors(folder, "vae", out), BIOESP_OK);
  bioesp_weights* vae = open_ok(out, NULL);
  assert_int_equal(count_of(vae), 244);
  bioesp_weights_close(vae);
  bioesp_weights_close(folder);
}

static void test_read_converts(void** state) {
  (void)state;
  bioesp_weights* w = open_ok(path_join(ref_dir(), "models/tiny-sd1/unet"), NULL);
  size_t i;
  assert_int_equal(bioesp_weights_find(w, NULL, "conv_in.bias", &i), BIOESP_OK);
  bioesp_tensor_info t = info_of(w, i);
  assert_int_equal(t.ndim, 1);
  float f32[64];
  uint16_t f16[64];
  double f64[64];
  assert_int_equal(bioesp_weights_read(w, i, BIOESP_DTYPE_F32, f32, sizeof f32), BIOESP_OK);
  assert_int_equal(bioesp_weights_read(w, i, BIOESP_DTYPE_F16, f16, sizeof f16), BIOESP_OK);
  assert_int_equal(bioesp_weights_read(w, i, BIOESP_DTYPE_F64, f64, sizeof f64), BIOESP_OK);
  for (int64_t k = 0; k < t.shape[0]; ++k) assert_true((float)f64[k] == f32[k]);
  /* too small a buffer, integer conversion, bad index, absent name */
  assert_int_equal(bioesp_weights_read(w, i, BIOESP_DTYPE_F32, f32, 4), BIOESP_ERR_INVALID_ARGUMENT);
  assert_int_equal(bioesp_weights_read(w, i, BIOESP_DTYPE_I64, f64, sizeof f64), BIOESP_ERR_INVALID_ARGUMENT);
  assert_int_equal(bioesp_weights_read(w, 100000, BIOESP_DTYPE_F32, f32, sizeof f32), BIOESP_ERR_INVALID_ARGUMENT);
  assert_int_equal(bioesp_weights_find(w, NULL, "nope", &i), BIOESP_ERR_NOT_FOUND);
  assert_non_null(strstr(bioesp_last_error(), "nope"));
  bioesp_weights_close(w);
}

static void test_lora_flavours(void** state) {
  (void)state;
  struct { const char* file; bioesp_lora_flavour flavour; } cases[] = {
      {"golden/tiny-sd1/lora/pytorch_lora_weights.safetensors", BIOESP_LORA_DIFFUSERS},
      {"golden/tiny-sd1/lora/kohya_lora.safetensors", BIOESP_LORA_KOHYA},
      {"golden/tiny-sd1/lora/legacy_lora.ckpt", BIOESP_LORA_LEGACY_CKPT},
      {"models/tiny-sd1/vae", BIOESP_LORA_NONE},
  };
  size_t targets = 0;
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; ++c) {
    bioesp_weights* w = open_ok(path_join(ref_dir(), cases[c].file), NULL);
    bioesp_lora_info l;
    memset(&l, 0, sizeof l);
    l.struct_size = sizeof l;
    assert_int_equal(bioesp_weights_lora_info(w, &l), BIOESP_OK);
    assert_int_equal(l.flavour, cases[c].flavour);
    if (l.flavour != BIOESP_LORA_NONE) {
      assert_int_equal(l.rank, 4);
      if (targets) assert_int_equal(l.num_targets, targets);
      targets = l.num_targets;
    }
    bioesp_weights_close(w);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_workshop_checkpoint),
      cmocka_unit_test(test_legacy_lora_equals_diffusers),
      cmocka_unit_test(test_single_file_equals_folder),
      cmocka_unit_test(test_save_roundtrip),
      cmocka_unit_test(test_read_converts),
      cmocka_unit_test(test_lora_flavours),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
