/* Fine-tuning through the public C API: a LoRA with the text encoder, cancel and resume, a full
 * fine-tune whose folder loads as a model, SDXL, progress fields and bad options. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <bioesp.h>

#include "support/testutil.h"

static const char* data_dir;

/* Three small images made by the library itself. */
static int setup(void** state) {
  (void)state;
  bioesp_model* model = NULL;
  if (bioesp_model_load(path_join(ref_dir(), "models/tiny-sd1"), NULL, &model) != BIOESP_OK) return 1;
  static const char* prompt[] = {"colibrí"};
  bioesp_generate_options g;
  bioesp_generate_options_init(&g);
  g.prompts = prompt;
  g.num_prompts = 1;
  g.steps = 2;
  g.width = 64;
  g.height = 80;
  g.images_per_prompt = 3;
  bioesp_images* images = NULL;
  if (bioesp_generate(model, &g, &images) != BIOESP_OK) return 1;
  static char dir[4096];
  snprintf(dir, sizeof dir, "%s", path_join(temp_dir(), "data"));
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
  if (system(cmd) != 0) return 1;
  for (size_t i = 0; i < 3; ++i) {
    char name[4200];
    snprintf(name, sizeof name, "%s/%zu.png", dir, i);
    if (bioesp_images_save(images, i, name, NULL) != BIOESP_OK) return 1;
  }
  bioesp_images_free(images);
  bioesp_model_free(model);
  data_dir = dir;
  return 0;
}

static bioesp_train_options base_options(const char* out) {
  bioesp_train_options o;
  bioesp_train_options_init(&o);
  o.model = path_join(ref_dir(), "models/tiny-sd1");
  o.data = data_dir;
  o.prompt = "criatura especulativa colombiana";
  o.resolution = 64;
  o.steps = 4;
  o.seed = 11;
  o.threads = 2;
  o.out = out;
  return o;
}

struct seen {
  int train_steps, last_total, cancel_at, world_size;
  double last_loss, last_lr, samples_per_second;
};

static int record(void* user, const bioesp_train_progress* p) {
  struct seen* s = user;
  if (strcmp(p->stage, "train") == 0) {
    s->train_steps++;
    s->last_total = p->total;
    s->last_loss = p->loss;
    s->last_lr = p->learning_rate;
    s->world_size = p->world_size;
    s->samples_per_second = p->samples_per_second;
    if (s->cancel_at && p->step == s->cancel_at) return 1;
  }
  return 0;
}

static void test_text_encoder_lora(void** state) {
  (void)state;
  char out[4096];
  snprintf(out, sizeof out, "%s", path_join(temp_dir(), "te"));
  bioesp_train_options o = base_options(out);
  o.train_text_encoder = 1;
  o.lr_scheduler = "linear";
  o.lr_warmup_steps = 1;
  struct seen s = {0};
  o.progress = record;
  o.progress_user = &s;
  char* result = NULL;
  assert_int_equal(bioesp_train(&o, &result), BIOESP_OK);
  assert_int_equal(s.train_steps, 4);
  assert_int_equal(s.last_total, 4);
  assert_int_equal(s.world_size, 1);
  assert_true(s.samples_per_second > 0);
  assert_true(s.last_loss > 0);
  assert_true(s.last_lr > 0 && s.last_lr < 1e-4);  /* linear decay */
  assert_non_null(strstr(result, "pytorch_lora_weights.safetensors"));
  /* UNet and text-encoder adapters both land when the file is attached to a model. */
  bioesp_weights* w = NULL;
  assert_int_equal(bioesp_weights_open(result, NULL, &w), BIOESP_OK);
  size_t n = 0;
  assert_int_equal(bioesp_weights_count(w, &n), BIOESP_OK);
  size_t index;
  assert_int_equal(bioesp_weights_find(w, NULL, "text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_linear_layer.down.weight", &index), BIOESP_OK);
  bioesp_weights_close(w);
  bioesp_model* model = NULL;
  assert_int_equal(bioesp_model_load(o.model, NULL, &model), BIOESP_OK);
  assert_int_equal(bioesp_model_add_lora(model, result, 1.0f, "mine"), BIOESP_OK);
  bioesp_model_free(model);
  bioesp_string_free(result);
}

static void test_cancel_then_resume(void** state) {
  (void)state;
  char out[4096];
  snprintf(out, sizeof out, "%s", path_join(temp_dir(), "cancel"));
  bioesp_train_options o = base_options(out);
  struct seen s = {0};
  s.cancel_at = 2;
  o.progress = record;
  o.progress_user = &s;
  char* result = NULL;
  assert_int_equal(bioesp_train(&o, &result), BIOESP_ERR_CANCELLED);
  assert_null(result);
  assert_non_null(strstr(bioesp_last_error(), "resume"));
  char ck[4200];
  snprintf(ck, sizeof ck, "%s/checkpoints/checkpoint-000002.safetensors", out);
  assert_true(file_exists(ck));
  s.cancel_at = 0;
  s.train_steps = 0;
  o.resume = 1;
  assert_int_equal(bioesp_train(&o, &result), BIOESP_OK);
  assert_int_equal(s.train_steps, 2);  /* steps 3 and 4 only */
  bioesp_string_free(result);
}

static void test_full_fine_tune_loads(void** state) {
  (void)state;
  char out[4096];
  snprintf(out, sizeof out, "%s", path_join(temp_dir(), "full"));
  bioesp_train_options o = base_options(out);
  o.full = 1;
  o.steps = 2;
  o.learning_rate = 1e-5f;
  char* result = NULL;
  assert_int_equal(bioesp_train(&o, &result), BIOESP_OK);
  bioesp_model* model = NULL;
  assert_int_equal(bioesp_model_load(result, NULL, &model), BIOESP_OK);
  static const char* prompt[] = {"criatura"};
  bioesp_generate_options g;
  bioesp_generate_options_init(&g);
  g.prompts = prompt;
  g.num_prompts = 1;
  g.steps = 2;
  bioesp_images* images = NULL;
  assert_int_equal(bioesp_generate(model, &g, &images), BIOESP_OK);
  bioesp_images_free(images);
  bioesp_model_free(model);
  bioesp_string_free(result);
  /* Full fine-tuning refuses half-precision master weights. */
  o.mixed_precision = "bf16";
  assert_int_equal(bioesp_train(&o, NULL), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), "float32"));
}

/* SDXL through the same call: a LoRA on the UNet and both text encoders that attaches with every
 * key placed, and a full fine-tune whose folder (with text_encoder_2/ and tokenizer_2/) loads and
 * draws. */
static void test_sdxl(void** state) {
  (void)state;
  char out[4096];
  snprintf(out, sizeof out, "%s", path_join(temp_dir(), "xl"));
  bioesp_train_options o = base_options(out);
  o.model = path_join(ref_dir(), "models/tiny-sdxl");
  o.steps = 2;
  o.train_text_encoder = 1;
  char* result = NULL;
  assert_int_equal(bioesp_train(&o, &result), BIOESP_OK);
  bioesp_weights* w = NULL;
  size_t index;
  assert_int_equal(bioesp_weights_open(result, NULL, &w), BIOESP_OK);
  assert_int_equal(bioesp_weights_find(w, NULL, "text_encoder_2.text_model.encoder.layers.0.self_attn.q_proj.lora_linear_layer.down.weight", &index), BIOESP_OK);
  bioesp_weights_close(w);
  bioesp_model* model = NULL;
  assert_int_equal(bioesp_model_load(o.model, NULL, &model), BIOESP_OK);
  assert_int_equal(bioesp_model_add_lora(model, result, 1.0f, "mine"), BIOESP_OK);
  bioesp_model_free(model);
  bioesp_string_free(result);

  snprintf(out, sizeof out, "%s", path_join(temp_dir(), "xl-full"));
  o.out = out;
  o.full = 1;
  o.learning_rate = 1e-5f;
  assert_int_equal(bioesp_train(&o, &result), BIOESP_OK);
  assert_int_equal(bioesp_model_load(result, NULL, &model), BIOESP_OK);
  static const char* prompt[] = {"criatura"};
  bioesp_generate_options g;
  bioesp_generate_options_init(&g);
  g.prompts = prompt;
  g.num_prompts = 1;
  g.steps = 2;
  g.width = g.height = 64;
  bioesp_images* images = NULL;
  assert_int_equal(bioesp_generate(model, &g, &images), BIOESP_OK);
  bioesp_images_free(images);
  bioesp_model_free(model);
  bioesp_string_free(result);
}

/* From scratch through the C API: a new model folder with its vocabulary learned from the
 * captions, then its VAE trained and saved in float16. */
static void test_from_scratch(void** state) {
  (void)state;
  bioesp_new_model_options n;
  bioesp_new_model_options_init(&n);
  assert_int_equal(bioesp_new_model(&n, NULL), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), "configs"));
  assert_int_equal(bioesp_new_model(NULL, NULL), BIOESP_ERR_INVALID_ARGUMENT);
  n.configs = path_join(ref_dir(), "models/tiny-sd1");
  n.data = path_join(temp_dir(), "nowhere");
  n.out = path_join(temp_dir(), "new");
  assert_int_equal(bioesp_new_model(&n, NULL), BIOESP_ERR_NOT_FOUND);
  assert_false(file_exists(n.out));  /* nothing half-written */
  n.data = data_dir;
  char* folder = NULL;
  /* Images without captions give no words to learn. */
  assert_int_equal(bioesp_new_model(&n, &folder), BIOESP_ERR_INVALID_ARGUMENT);
  assert_null(folder);
  for (int i = 0; i < 3; ++i) {
    char name[4200];
    snprintf(name, sizeof name, "%s/%d.txt", data_dir, i);
    write_file(name, "colibrí, lagarto", strlen("colibrí, lagarto"));
  }
  assert_int_equal(bioesp_new_model(&n, &folder), BIOESP_OK);
  assert_string_equal(folder, n.out);
  bioesp_string_free(folder);

  bioesp_train_options o = base_options(path_join(temp_dir(), "vae"));
  o.model = n.out;
  o.train_vae = 1;
  o.save_half = 1;
  o.steps = 2;
  char* result = NULL;
  assert_int_equal(bioesp_train(&o, &result), BIOESP_OK);
  bioesp_model* model = NULL;
  assert_int_equal(bioesp_model_load(result, NULL, &model), BIOESP_OK);
  bioesp_model_free(model);
  bioesp_string_free(result);
  for (int i = 0; i < 3; ++i) {
    char name[4200];
    snprintf(name, sizeof name, "%s/%d.txt", data_dir, i);
    remove(name);
  }
}

static const char* metadata_of(const char* path, const char* key) {
  static char value[4096];
  bioesp_weights* w = NULL;
  size_t n = 0;
  assert_int_equal(bioesp_weights_open(path, NULL, &w), BIOESP_OK);
  bioesp_weights_metadata_count(w, &n);
  int found = 0;
  for (size_t i = 0; i < n && !found; ++i) {
    const char *k, *v;
    if (bioesp_weights_metadata(w, i, &k, &v) == BIOESP_OK && strcmp(k, key) == 0) {
      snprintf(value, sizeof value, "%s", v);
      found = 1;
    }
  }
  bioesp_weights_close(w);
  return found ? value : NULL;
}

/* The scripts' options as fields at the end: the sentinels that mean "the family's default",
 * the flags the table gives them, and --vae on SD 1.x: a VAE folder trains and is named in the
 * LoRA's metadata; a missing one, TAESD and a VAE without latent channels to fit are refused. */
static void test_script_options(void** state) {
  (void)state;
  bioesp_train_options o;
  bioesp_train_options_init(&o);
  assert_true(o.adam_weight_decay < 0 && o.adam_weight_decay_text_encoder < 0 && o.text_encoder_lr < 0);
  assert_null(o.vae);
  assert_int_equal(bioesp_option_set(BIOESP_OPTIONS_TRAIN, &o, "adam_weight_decay_text_encoder", "0.25"), BIOESP_OK);
  assert_true(o.adam_weight_decay_text_encoder == 0.25f);
  assert_int_equal(bioesp_option_set(BIOESP_OPTIONS_TRAIN, &o, "text_encoder_lr", "0"), BIOESP_OK);
  assert_true(o.text_encoder_lr == 0.0f);
  assert_int_equal(bioesp_option_set(BIOESP_OPTIONS_TRAIN, &o, "adam_weight_decay", "-2"), BIOESP_ERR_INVALID_ARGUMENT);
  assert_int_equal(bioesp_option_set(BIOESP_OPTIONS_TRAIN, &o, "vae", "some/vae"), BIOESP_OK);
  assert_string_equal(o.vae, "some/vae");

  char out[4096];
  snprintf(out, sizeof out, "%s", path_join(temp_dir(), "sd1-vae"));
  o = base_options(out);
  o.steps = 1;
  char vae[4096];
  snprintf(vae, sizeof vae, "%s", path_join(ref_dir(), "models/tiny-sd1/vae"));
  o.vae = vae;
  char* result = NULL;
  assert_int_equal(bioesp_train(&o, &result), BIOESP_OK);
  const char* named = metadata_of(result, "bioesp.vae");
  assert_non_null(named);
  assert_string_equal(named, vae);
  bioesp_string_free(result);
  o.vae = NULL;
  o.out = path_join(temp_dir(), "sd1-own-vae");
  assert_int_equal(bioesp_train(&o, &result), BIOESP_OK);
  assert_null(metadata_of(result, "bioesp.vae"));
  bioesp_string_free(result);

  o.vae = path_join(temp_dir(), "no-such-vae");
  assert_int_equal(bioesp_train(&o, NULL), BIOESP_ERR_NOT_FOUND);
  char taesd[4096];
  snprintf(taesd, sizeof taesd, "%s", path_join(ref_dir(), "golden/fast/taesd"));
  o.vae = taesd;
  assert_int_equal(bioesp_train(&o, NULL), BIOESP_ERR_UNSUPPORTED);
  assert_non_null(strstr(bioesp_last_error(), "TAESD"));
}

static void test_bad_options(void** state) {
  (void)state;
  assert_int_equal(bioesp_train(NULL, NULL), BIOESP_ERR_INVALID_ARGUMENT);
  bioesp_train_options o = base_options(path_join(temp_dir(), "bad"));
  o.data = NULL;
  assert_int_equal(bioesp_train(&o, NULL), BIOESP_ERR_INVALID_ARGUMENT);
  o = base_options(path_join(temp_dir(), "bad"));
  o.device = BIOESP_DEVICE_CUDA;
  o.mixed_precision = "fp16";
  bioesp_status st = bioesp_train(&o, NULL);
  assert_true(st == BIOESP_ERR_UNSUPPORTED || st == BIOESP_ERR_NOT_FOUND || st == BIOESP_OK);
  o = base_options(path_join(temp_dir(), "bad"));
  o.rank = 0;
  assert_int_equal(bioesp_train(&o, NULL), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), "rank"));
  /* Across processes: settings refused by name before anything loads. */
  o = base_options(path_join(temp_dir(), "bad"));
  o.backend = "mpi";
  assert_int_equal(bioesp_train(&o, NULL), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), "backend: must be one of auto, gloo, nccl, not 'mpi'"));
  o = base_options(path_join(temp_dir(), "bad"));
  o.master_port = 70000;
  assert_int_equal(bioesp_train(&o, NULL), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), "master_port: must be between 1 and 65535"));
  o = base_options(path_join(temp_dir(), "bad"));
  o.world_size = 2;
  o.process_rank = 2;
  assert_int_equal(bioesp_train(&o, NULL), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), "rank 2 is not one of 0 to 1"));
  /* A caller built against a shorter options struct gets defaults for the rest. */
  o = base_options(path_join(temp_dir(), "short"));
  o.struct_size = offsetof(bioesp_train_options, out);
  assert_int_equal(bioesp_train(&o, NULL), BIOESP_ERR_INVALID_ARGUMENT);  /* out lies beyond it */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_text_encoder_lora), cmocka_unit_test(test_cancel_then_resume),
      cmocka_unit_test(test_full_fine_tune_loads), cmocka_unit_test(test_sdxl), cmocka_unit_test(test_from_scratch),
      cmocka_unit_test(test_script_options), cmocka_unit_test(test_bad_options)};
  return cmocka_run_group_tests(tests, setup, NULL);
}
