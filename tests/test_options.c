/* Options by name through the C API: the table's kinds and rows, parsing and range checks by
 * type, lists and images, defaults read from the init functions, older (shorter) structs, the
 * entry points refusing out-of-range fields by name, and the one list of schedulers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <bioesp.h>

/* The field as text (a static buffer). */
static const char* get(bioesp_options_kind kind, const void* options, const char* name) {
  static char buf[1024];
  char* text = NULL;
  if (bioesp_option_get(kind, options, name, &text) != BIOESP_OK) fail_msg("%s: %s", name, bioesp_last_error());
  snprintf(buf, sizeof buf, "%s", text);
  bioesp_string_free(text);
  return buf;
}

static void set_ok(bioesp_options_kind kind, void* options, const char* name, const char* text) {
  if (bioesp_option_set(kind, options, name, text) != BIOESP_OK) fail_msg("%s = %s: %s", name, text, bioesp_last_error());
}

/* Refused with INVALID_ARGUMENT and exactly this message. */
static void set_refused(bioesp_options_kind kind, void* options, const char* name, const char* text, const char* message) {
  assert_int_equal(bioesp_option_set(kind, options, name, text), BIOESP_ERR_INVALID_ARGUMENT);
  assert_string_equal(bioesp_last_error(), message);
}

static void test_kinds(void** state) {
  (void)state;
  const char* names[] = {"weights", "model", "generate", "animate", "animation", "save",
                         "fetch", "prepare", "train", "new_model", "pull", "push", "evaluate"};
  for (int k = 0; k < 13; ++k) {
    assert_string_equal(bioesp_options_kind_name((bioesp_options_kind)k), names[k]);
    bioesp_options_kind found;
    assert_int_equal(bioesp_options_kind_find(names[k], &found), BIOESP_OK);
    assert_int_equal(found, k);
  }
  assert_null(bioesp_options_kind_name((bioesp_options_kind)13));
  bioesp_options_kind found;
  assert_int_equal(bioesp_options_kind_find("generat", &found), BIOESP_ERR_NOT_FOUND);
  size_t n;
  assert_int_equal(bioesp_option_count((bioesp_options_kind)13, &n), BIOESP_ERR_INVALID_ARGUMENT);
  /* a struct from the library carries its defaults */
  void* o = NULL;
  assert_int_equal(bioesp_options_new(BIOESP_OPTIONS_GENERATE, &o), BIOESP_OK);
  assert_int_equal(((bioesp_generate_options*)o)->struct_size, sizeof(bioesp_generate_options));
  assert_int_equal(((bioesp_generate_options*)o)->steps, 50);
  bioesp_options_free(o);
}

/* Every row of every kind is whole: a name, a type, help and a flag for settable fields, the reason
 * for the others, a count field of type SIZE for lists; names and flags unique in a kind, and no
 * flag another field's name. */
static void test_rows(void** state) {
  (void)state;
  for (int k = 0; bioesp_options_kind_name((bioesp_options_kind)k); ++k) {
    bioesp_options_kind kind = (bioesp_options_kind)k;
    size_t n = 0;
    assert_int_equal(bioesp_option_count(kind, &n), BIOESP_OK);
    assert_true(n >= 2);
    for (size_t i = 0; i < n; ++i) {
      bioesp_option r = {sizeof r};
      assert_int_equal(bioesp_option_at(kind, i, &r), BIOESP_OK);
      assert_non_null(r.name);
      if (i == 0) assert_string_equal(r.name, "struct_size");
      assert_true((r.flag == NULL) == (r.not_exposed != NULL));
      if (!r.not_exposed) assert_true(strlen(r.help) > 10);
      assert_true((r.type == BIOESP_OPTION_CHOICE) == (r.choices != NULL));
      if (r.type == BIOESP_OPTION_STRING_LIST || r.type == BIOESP_OPTION_UINT64_LIST) {
        bioesp_option c = {sizeof c};
        assert_int_equal(bioesp_option_find(kind, r.count, &c), BIOESP_OK);
        assert_int_equal(c.type, BIOESP_OPTION_SIZE);
      }
      for (size_t j = 0; j < i; ++j) {
        bioesp_option q = {sizeof q};
        assert_int_equal(bioesp_option_at(kind, j, &q), BIOESP_OK);
        assert_string_not_equal(q.name, r.name);
        if (q.flag && r.flag) assert_string_not_equal(q.flag, r.flag);
        /* a flag is never another field's name: lookups by either find one row */
        if (q.flag) assert_string_not_equal(q.flag, r.name);
        if (r.flag) assert_string_not_equal(r.flag, q.name);
      }
    }
    bioesp_option r = {sizeof r};
    assert_int_equal(bioesp_option_at(kind, n, &r), BIOESP_ERR_INVALID_ARGUMENT);
  }
}

static void test_find(void** state) {
  (void)state;
  bioesp_option r = {sizeof r};
  assert_int_equal(bioesp_option_find(BIOESP_OPTIONS_GENERATE, "num-images", &r), BIOESP_OK);
  assert_string_equal(r.name, "images_per_prompt");
  assert_int_equal(r.type, BIOESP_OPTION_INT);
  assert_true(r.min == 1);
  assert_int_equal(bioesp_option_find(BIOESP_OPTIONS_GENERATE, "negative_prompt", &r), BIOESP_OK);
  assert_string_equal(r.flag, "negative-prompt");
  assert_int_equal(bioesp_option_find(BIOESP_OPTIONS_GENERATE, "prompt", &r), BIOESP_OK);
  assert_string_equal(r.name, "prompts");
  assert_string_equal(r.count, "num_prompts");
  assert_int_equal(bioesp_option_find(BIOESP_OPTIONS_TRAIN, "lr", &r), BIOESP_OK);
  assert_string_equal(r.name, "learning_rate");
  assert_true(r.min == 0 && r.min_exclusive);
  assert_int_equal(bioesp_option_find(BIOESP_OPTIONS_TRAIN, "progress", &r), BIOESP_OK);
  assert_int_equal(r.type, BIOESP_OPTION_FUNCTION);
  assert_null(r.flag);
  assert_non_null(strstr(r.not_exposed, "progress object"));
  assert_int_equal(bioesp_option_find(BIOESP_OPTIONS_GENERATE, "colour", &r), BIOESP_ERR_NOT_FOUND);
  assert_non_null(strstr(bioesp_last_error(), "colour"));
  /* an older caller's struct gets only the fields it has */
  bioesp_option old;
  memset(&old, 0x5a, sizeof old);
  old.struct_size = offsetof(bioesp_option, type);
  assert_int_equal(bioesp_option_find(BIOESP_OPTIONS_GENERATE, "steps", &old), BIOESP_OK);
  assert_int_equal(old.struct_size, offsetof(bioesp_option, type));
  assert_string_equal(old.name, "steps");
  assert_string_equal(old.flag, "steps");
  assert_int_equal(((unsigned char*)&old.type)[0], 0x5a);
  assert_int_equal(((unsigned char*)&old.count)[0], 0x5a);
  old.struct_size = 0;
  assert_int_equal(bioesp_option_find(BIOESP_OPTIONS_GENERATE, "steps", &old), BIOESP_ERR_INVALID_ARGUMENT);
}

static void test_numbers(void** state) {
  (void)state;
  bioesp_generate_options g;
  bioesp_generate_options_init(&g);
  set_ok(BIOESP_OPTIONS_GENERATE, &g, "steps", "25");
  assert_int_equal(g.steps, 25);
  assert_string_equal(get(BIOESP_OPTIONS_GENERATE, &g, "steps"), "25");
  set_refused(BIOESP_OPTIONS_GENERATE, &g, "steps", "0", "steps: must be between 1 and 1000, not 0");
  set_refused(BIOESP_OPTIONS_GENERATE, &g, "steps", "25.5", "steps: must be an integer, not '25.5'");
  set_refused(BIOESP_OPTIONS_GENERATE, &g, "steps", "99999999999", "steps: must be an integer, not '99999999999'");
  set_refused(BIOESP_OPTIONS_GENERATE, &g, "steps", "", "steps: must be an integer, not ''");
  assert_int_equal(g.steps, 25); /* a refused value changes nothing */
  set_ok(BIOESP_OPTIONS_GENERATE, &g, "guidance", "7.25");
  assert_true(g.guidance == 7.25f);
  set_refused(BIOESP_OPTIONS_GENERATE, &g, "guidance", "nan", "guidance: must be a finite number, not nan");
  set_refused(BIOESP_OPTIONS_GENERATE, &g, "guidance", "-1", "guidance: must be at least 0, not -1");
  set_refused(BIOESP_OPTIONS_GENERATE, &g, "guidance", "1e39", "guidance: must be a finite number, not 1e39");
  set_refused(BIOESP_OPTIONS_GENERATE, &g, "strength", "0", "strength: must be above 0 and at most 1, not 0");
  set_ok(BIOESP_OPTIONS_GENERATE, &g, "strength", "1");
  set_ok(BIOESP_OPTIONS_GENERATE, &g, "seed", "18446744073709551615");
  assert_true(g.seed == UINT64_MAX);
  set_refused(BIOESP_OPTIONS_GENERATE, &g, "seed", "-1", "seed: must be a non-negative integer, not '-1'");
  set_refused(BIOESP_OPTIONS_GENERATE, &g, "seed", "18446744073709551616",
              "seed: must be a non-negative integer, not '18446744073709551616'");
  bioesp_train_options t;
  bioesp_train_options_init(&t);
  set_refused(BIOESP_OPTIONS_TRAIN, &t, "adam_beta1", "1", "adam_beta1: must be at least 0 and below 1, not 1");
  set_refused(BIOESP_OPTIONS_TRAIN, &t, "learning_rate", "0", "learning_rate: must be above 0, not 0");
  set_ok(BIOESP_OPTIONS_TRAIN, &t, "learning_rate", "3e-5");
  assert_true(t.learning_rate == 3e-5f);
  bioesp_animation_options a;
  bioesp_animation_options_init(&a);
  set_ok(BIOESP_OPTIONS_ANIMATION, &a, "fps", "12.5");
  assert_true(a.fps == 12.5);
  set_refused(BIOESP_OPTIONS_ANIMATION, &a, "fps", "241", "fps: must be above 0 and at most 240, not 241");
}

static void test_defaults(void** state) {
  (void)state;
  bioesp_generate_options g;
  bioesp_generate_options_init(&g);
  assert_string_equal(get(BIOESP_OPTIONS_GENERATE, &g, "steps"), "50");
  assert_string_equal(get(BIOESP_OPTIONS_GENERATE, &g, "guidance"), "7.5");
  assert_string_equal(get(BIOESP_OPTIONS_GENERATE, &g, "strength"), "0.8");
  assert_string_equal(get(BIOESP_OPTIONS_GENERATE, &g, "scheduler"), "");
  assert_string_equal(get(BIOESP_OPTIONS_GENERATE, &g, "device_generator"), "false");
  assert_string_equal(get(BIOESP_OPTIONS_GENERATE, &g, "prompts"), "[]");
  assert_string_equal(get(BIOESP_OPTIONS_GENERATE, &g, "init_image"), "");
  bioesp_train_options t;
  bioesp_train_options_init(&t);
  assert_string_equal(get(BIOESP_OPTIONS_TRAIN, &t, "learning_rate"), "0.0001");
  assert_string_equal(get(BIOESP_OPTIONS_TRAIN, &t, "adam_epsilon"), "1e-08");
  assert_string_equal(get(BIOESP_OPTIONS_TRAIN, &t, "use_captions"), "true");
  assert_string_equal(get(BIOESP_OPTIONS_TRAIN, &t, "device"), "cpu");
  bioesp_prepare_options p;
  bioesp_prepare_options_init(&p);
  assert_string_equal(get(BIOESP_OPTIONS_PREPARE, &p, "background"), "ffffff");
  /* callbacks are not text */
  char* text = (char*)"untouched";
  assert_int_equal(bioesp_option_get(BIOESP_OPTIONS_TRAIN, &t, "progress", &text), BIOESP_ERR_INVALID_ARGUMENT);
  assert_null(text);
}

static void test_struct_size_row(void** state) {
  (void)state;
  bioesp_generate_options g;
  bioesp_generate_options_init(&g);
  char buf[32];
  snprintf(buf, sizeof buf, "%zu", sizeof g);
  assert_string_equal(get(BIOESP_OPTIONS_GENERATE, &g, "struct_size"), buf);
}

static void test_choices_and_text(void** state) {
  (void)state;
  bioesp_generate_options g;
  bioesp_generate_options_init(&g);
  char name[16] = "ddim";
  set_ok(BIOESP_OPTIONS_GENERATE, &g, "scheduler", name);
  strcpy(name, "xxxx"); /* choices keep the library's copy */
  assert_string_equal(g.scheduler, "ddim");
  assert_true(g.scheduler != name);
  assert_int_equal(bioesp_option_set(BIOESP_OPTIONS_GENERATE, &g, "scheduler", "heun"), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), "scheduler: must be one of pndm, ddim"));
  assert_non_null(strstr(bioesp_last_error(), ", not 'heun'"));
  set_ok(BIOESP_OPTIONS_GENERATE, &g, "scheduler", "");
  assert_null(g.scheduler);
  /* from_config settings after the name: the name is checked, the text kept as given */
  const char* swapped = "euler:timestep_spacing=trailing";
  set_ok(BIOESP_OPTIONS_GENERATE, &g, "scheduler", swapped);
  assert_ptr_equal(g.scheduler, swapped);
  set_ok(BIOESP_OPTIONS_GENERATE, &g, "scheduler", ":timestep_spacing=trailing"); /* the model's own class */
  assert_int_equal(bioesp_option_set(BIOESP_OPTIONS_GENERATE, &g, "scheduler", "heun:eta=1"), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), ", not 'heun'"));
  /* eta: negative is the scheduler's own (the default), at most 1 */
  assert_string_equal(get(BIOESP_OPTIONS_GENERATE, &g, "eta"), "-1");
  set_ok(BIOESP_OPTIONS_GENERATE, &g, "eta", "0.5");
  set_refused(BIOESP_OPTIONS_GENERATE, &g, "eta", "1.5", "eta: must be at most 1, not 1.5");
  /* strings keep the caller's pointer */
  const char* negative = "blurry";
  set_ok(BIOESP_OPTIONS_GENERATE, &g, "negative_prompt", negative);
  assert_ptr_equal(g.negative_prompt, negative);
  set_ok(BIOESP_OPTIONS_GENERATE, &g, "negative_prompt", NULL);
  assert_null(g.negative_prompt);
  set_ok(BIOESP_OPTIONS_GENERATE, &g, "device_generator", "TRUE");
  assert_int_equal(g.device_generator, 1);
  set_ok(BIOESP_OPTIONS_GENERATE, &g, "device_generator", "0");
  assert_int_equal(g.device_generator, 0);
  set_refused(BIOESP_OPTIONS_GENERATE, &g, "device_generator", "yes", "device_generator: must be 1, 0, true or false, not 'yes'");
  bioesp_model_options m;
  bioesp_model_options_init(&m);
  set_ok(BIOESP_OPTIONS_MODEL, &m, "dtype", "bf16");
  assert_int_equal(m.dtype, BIOESP_DTYPE_BF16);
  assert_string_equal(get(BIOESP_OPTIONS_MODEL, &m, "dtype"), "bf16");
  set_ok(BIOESP_OPTIONS_MODEL, &m, "device", "cuda");
  assert_int_equal(m.device, BIOESP_DEVICE_CUDA);
  set_refused(BIOESP_OPTIONS_MODEL, &m, "device", "tpu", "device: must be one of cpu, cuda, not 'tpu'");
  bioesp_prepare_options p;
  bioesp_prepare_options_init(&p);
  set_ok(BIOESP_OPTIONS_PREPARE, &p, "background", "1a2B3c");
  assert_int_equal(p.background[0], 0x1a);
  assert_int_equal(p.background[1], 0x2b);
  assert_int_equal(p.background[2], 0x3c);
  assert_string_equal(get(BIOESP_OPTIONS_PREPARE, &p, "background"), "1a2b3c");
  set_ok(BIOESP_OPTIONS_PREPARE, &p, "background", "#000000");
  assert_int_equal(p.background[0], 0);
  set_refused(BIOESP_OPTIONS_PREPARE, &p, "background", "12345g", "background: must be a colour as RRGGBB, not '12345g'");
  set_refused(BIOESP_OPTIONS_PREPARE, &p, "crop", "stretch", "crop: must be one of center, attention, pad, not 'stretch'");
  /* what is not set by name, and what is not there */
  set_refused(BIOESP_OPTIONS_GENERATE, &g, "progress", "x",
              "progress is not set by name: a C function pointer: the command line passes its progress bar, each "
              "binding its own progress object");
  set_refused(BIOESP_OPTIONS_GENERATE, &g, "prompts", "x", "prompts: a list or image; set it with bioesp_option_set_list");
  assert_int_equal(bioesp_option_set(BIOESP_OPTIONS_GENERATE, &g, "num-images", "2"), BIOESP_ERR_NOT_FOUND); /* names, not flags */
  assert_int_equal(bioesp_option_set(BIOESP_OPTIONS_GENERATE, NULL, "steps", "2"), BIOESP_ERR_INVALID_ARGUMENT);
}

static void test_lists(void** state) {
  (void)state;
  bioesp_generate_options g;
  bioesp_generate_options_init(&g);
  const char* prompts[] = {"colibrí", "say \"hi\""};
  assert_int_equal(bioesp_option_set_list(BIOESP_OPTIONS_GENERATE, &g, "prompts", prompts, 2), BIOESP_OK);
  assert_ptr_equal(g.prompts, prompts);
  assert_int_equal(g.num_prompts, 2);
  assert_string_equal(get(BIOESP_OPTIONS_GENERATE, &g, "prompts"), "[\"colibrí\",\"say \\\"hi\\\"\"]");
  uint8_t px[2 * 4 * 3] = {0};
  bioesp_image img = {sizeof img, 4, 2, 3, px};
  assert_int_equal(bioesp_option_set_list(BIOESP_OPTIONS_GENERATE, &g, "init_image", &img, 1), BIOESP_OK);
  assert_ptr_equal(g.init_image, &img);
  assert_string_equal(get(BIOESP_OPTIONS_GENERATE, &g, "init_image"), "4x2x3");
  assert_int_equal(bioesp_option_set_list(BIOESP_OPTIONS_GENERATE, &g, "init_image", NULL, 0), BIOESP_OK);
  assert_null(g.init_image);
  assert_int_equal(bioesp_option_set_list(BIOESP_OPTIONS_GENERATE, &g, "steps", prompts, 1), BIOESP_ERR_INVALID_ARGUMENT);
  bioesp_animate_options a;
  bioesp_animate_options_init(&a);
  const uint64_t seeds[] = {1, 18446744073709551615ull};
  assert_int_equal(bioesp_option_set_list(BIOESP_OPTIONS_ANIMATE, &a, "seeds", seeds, 2), BIOESP_OK);
  assert_int_equal(a.num_seeds, 2);
  assert_string_equal(get(BIOESP_OPTIONS_ANIMATE, &a, "seeds"), "[1,18446744073709551615]");
  assert_int_equal(bioesp_option_set_list(BIOESP_OPTIONS_ANIMATE, &a, "seeds", NULL, 0), BIOESP_OK);
  assert_null(a.seeds);
  assert_int_equal(a.num_seeds, 0);
}

/* A caller compiled against an older bioesp.h has a shorter struct: its fields are set, the ones
 * it lacks are not written. */
static void test_older_struct(void** state) {
  (void)state;
  bioesp_generate_options g;
  bioesp_generate_options_init(&g);
  g.struct_size = offsetof(bioesp_generate_options, vae_tile_size);
  g.vae_tile_size = 77;
  set_ok(BIOESP_OPTIONS_GENERATE, &g, "steps", "9");
  assert_int_equal(g.steps, 9);
  assert_int_equal(bioesp_option_set(BIOESP_OPTIONS_GENERATE, &g, "vae_tile_size", "64"), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), "vae_tile_size: not in these generate options"));
  assert_int_equal(g.vae_tile_size, 77);
}

/* The entry points check every field against the table before any work, naming the field. */
static void test_entry_points_check(void** state) {
  (void)state;
  bioesp_fetch_options f;
  bioesp_fetch_options_init(&f);
  f.out = "/nonexistent/out";
  f.value = "Aves";
  f.max_retries = -1;
  assert_int_equal(bioesp_fetch(&f, NULL, NULL), BIOESP_ERR_INVALID_ARGUMENT);
  assert_string_equal(bioesp_last_error(), "max_retries: must be between 0 and 100, not -1");
  bioesp_fetch_options_init(&f);
  f.out = "/nonexistent/out";
  f.source = BIOESP_SOURCE_TITLES;
  f.num_titles = 2;
  assert_int_equal(bioesp_fetch(&f, NULL, NULL), BIOESP_ERR_INVALID_ARGUMENT);
  assert_string_equal(bioesp_last_error(), "titles: NULL with num_titles 2");
  f.source = (bioesp_source)9;
  assert_int_equal(bioesp_fetch(&f, NULL, NULL), BIOESP_ERR_INVALID_ARGUMENT);
  assert_string_equal(bioesp_last_error(), "source: must be one of category, campaign, search, titles, not 9");
  bioesp_prepare_options p;
  bioesp_prepare_options_init(&p);
  p.in = "/nonexistent/in";
  p.out = "/nonexistent/out";
  p.size = 4;
  assert_int_equal(bioesp_prepare(&p, NULL, NULL), BIOESP_ERR_INVALID_ARGUMENT);
  assert_string_equal(bioesp_last_error(), "size: must be between 8 and 8192, not 4");
  bioesp_train_options t;
  bioesp_train_options_init(&t);
  t.model = t.data = t.out = "/nonexistent";
  t.lr_scheduler = "exp";
  assert_int_equal(bioesp_train(&t, NULL), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), "lr_scheduler: must be one of constant, constant_with_warmup"));
  bioesp_pull_options pu;
  bioesp_pull_options_init(&pu);
  pu.repo = "a/b";
  pu.retry_delay = -0.5;
  assert_int_equal(bioesp_pull(&pu, NULL), BIOESP_ERR_INVALID_ARGUMENT);
  assert_string_equal(bioesp_last_error(), "retry_delay: must be between 0 and 3600, not -0.5");
}

static void test_schedulers(void** state) {
  (void)state;
  size_t n = 0;
  assert_int_equal(bioesp_scheduler_count(&n), BIOESP_OK);
  assert_true(n >= 8);
  char joined[256] = "";
  for (size_t i = 0; i < n; ++i) {
    const char* name = NULL;
    assert_int_equal(bioesp_scheduler_name(i, &name), BIOESP_OK);
    if (i) strcat(joined, "|");
    strcat(joined, name);
  }
  assert_non_null(strstr(joined, "pndm|ddim|"));
  assert_non_null(strstr(joined, "|ddpm"));
  const char* name = NULL;
  assert_int_equal(bioesp_scheduler_name(n, &name), BIOESP_ERR_INVALID_ARGUMENT);
  /* the table's choices are that list, for generate and animate alike */
  bioesp_option r = {sizeof r};
  assert_int_equal(bioesp_option_find(BIOESP_OPTIONS_GENERATE, "scheduler", &r), BIOESP_OK);
  assert_string_equal(r.choices, joined);
  assert_int_equal(bioesp_option_find(BIOESP_OPTIONS_ANIMATE, "scheduler", &r), BIOESP_OK);
  assert_string_equal(r.choices, joined);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kinds),           cmocka_unit_test(test_rows),
      cmocka_unit_test(test_find),            cmocka_unit_test(test_numbers),
      cmocka_unit_test(test_defaults),        cmocka_unit_test(test_struct_size_row),
      cmocka_unit_test(test_choices_and_text), cmocka_unit_test(test_lists),
      cmocka_unit_test(test_older_struct),    cmocka_unit_test(test_entry_points_check),
      cmocka_unit_test(test_schedulers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
