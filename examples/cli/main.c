/* bioesp — the command-line tool. It uses only the public C API in bioesp.h. */
#include <bioesp.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "options.h"

int fail_with(const char* what) {
  fprintf(stderr, "bioesp: %s: %s\n", what, bioesp_last_error());
  return 1;
}

static const char* format_name(bioesp_weights_format f) {
  switch (f) {
    case BIOESP_FORMAT_SAFETENSORS: return "safetensors";
    case BIOESP_FORMAT_PYTORCH_ZIP: return "PyTorch zip checkpoint";
    case BIOESP_FORMAT_DIFFUSERS: return "diffusers folder";
    case BIOESP_FORMAT_SHARDED: return "sharded safetensors";
  }
  return "?";
}

static const char* flavour_name(bioesp_lora_flavour f) {
  switch (f) {
    case BIOESP_LORA_NONE: return "none";
    case BIOESP_LORA_DIFFUSERS: return "diffusers";
    case BIOESP_LORA_PEFT: return "peft";
    case BIOESP_LORA_KOHYA: return "kohya";
    case BIOESP_LORA_LEGACY_CKPT: return "legacy checkpoint";
  }
  return "?";
}

void print_log(void* user, bioesp_log_level level, const char* message) {
  (void)user;
  if (level >= BIOESP_LOG_INFO) fprintf(stderr, "bioesp: %s\n", message);
}

static int same_shape(const bioesp_tensor_info* a, const bioesp_tensor_info* b) {
  if (a->ndim != b->ndim) return 0;
  for (size_t d = 0; d < a->ndim; ++d)
    if (a->shape[d] != b->shape[d]) return 0;
  return 1;
}

static void print_shape(const bioesp_tensor_info* t) {
  printf("[");
  for (size_t d = 0; d < t->ndim; ++d) printf(d ? ", %lld" : "%lld", (long long)t->shape[d]);
  printf("]");
}

static int ends_with(const char* s, const char* suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Finds the file tensor for an expected one; text encoders may be saved without "text_model.". */
static int find_present(const bioesp_weights* present, const bioesp_tensor_info* want, size_t* index) {
  if (bioesp_weights_find(present, want->component, want->name, index) == BIOESP_OK) return 1;
  const char* prefix = "text_model.";
  return strncmp(want->name, prefix, strlen(prefix)) == 0 &&
         bioesp_weights_find(present, want->component, want->name + strlen(prefix), index) == BIOESP_OK;
}

static int cmd_expected(const char* path, bioesp_weights_options* opt) {
  bioesp_weights *expected = NULL, *present = NULL;
  if (bioesp_weights_open_expected(path, opt, &expected) != BIOESP_OK) return fail_with(path);
  opt->to_diffusers = 1;
  if (bioesp_weights_open(path, opt, &present) != BIOESP_OK) {
    bioesp_weights_close(expected);
    return fail_with(path);
  }
  size_t ne = 0, np = 0, missing = 0, mismatched = 0, unexpected = 0;
  bioesp_weights_count(expected, &ne);
  bioesp_weights_count(present, &np);
  printf("path: %s\nexpected tensors: %zu\npresent tensors: %zu\n", path, ne, np);
  char* matched = calloc(np ? np : 1, 1);
  for (size_t i = 0; i < ne; ++i) {
    bioesp_tensor_info e = {0}, p = {0};
    e.struct_size = p.struct_size = sizeof e;
    bioesp_weights_tensor(expected, i, &e);
    size_t j;
    if (!find_present(present, &e, &j)) {
      printf("missing: %s/%s ", e.component, e.name);
      print_shape(&e);
      printf("\n");
      ++missing;
      continue;
    }
    matched[j] = 1;
    bioesp_weights_tensor(present, j, &p);
    if (!same_shape(&e, &p)) {
      printf("mismatched: %s/%s file ", e.component, e.name);
      print_shape(&p);
      printf(" vs architecture ");
      print_shape(&e);
      printf("\n");
      ++mismatched;
    }
  }
  for (size_t j = 0; j < np; ++j) {
    bioesp_tensor_info p = {0};
    p.struct_size = sizeof p;
    bioesp_weights_tensor(present, j, &p);
    if (matched[j] || ends_with(p.name, "position_ids")) continue;
    printf("unexpected: %s%s%s\n", p.component, p.component[0] ? "/" : "", p.name);
    ++unexpected;
  }
  free(matched);
  bioesp_weights_close(expected);
  bioesp_weights_close(present);
  printf("result: %zu missing, %zu unexpected, %zu mismatched\n", missing, unexpected, mismatched);
  return missing || unexpected || mismatched ? 1 : 0;
}

/* The scheduler a name gives the model at `path`, as JSON. */
static int print_scheduler(const char* path, const char* name, long steps) {
  char* json = NULL;
  if (bioesp_scheduler_describe(path, name, (int)steps, &json) != BIOESP_OK) return fail_with(path);
  printf("%s\n", json);
  bioesp_string_free(json);
  return 0;
}

static int cmd_inspect(int argc, char** argv) {
  const char* path = NULL;
  const char* scheduler = NULL;
  int expected = 0;
  long steps = 0;
  cli_int steps_flag = {&steps, 1, 1000};
  bioesp_weights_options opt;
  bioesp_weights_options_init(&opt);
  opt.log = print_log;
  const cli_flag own[] = {
      {NULL, "PATH", "a weight file (safetensors, .ckpt/.pt/.bin, a sharded index), a diffusers folder or a Hub id",
       cli_text, &path},
      {"expected", NULL, "compare with the tensors the architecture's configs expect (exit 1 on any difference)",
       cli_switch, &expected},
      {"scheduler", "NAME[:KEY=VALUE,...]", "print as JSON the full config the model's scheduler gets under that name "
       "(\"\": its own), as diffusers' from_config builds it, with its timesteps", cli_text, &scheduler},
      {"steps", "N", "the steps of --scheduler's timesteps (default 50)", cli_integer, &steps_flag}};
  const cli_command command = {
      "inspect", "PATH [options]",
      "Lists the tensors of a weight file or diffusers folder: format, name, dtype, shape, parameter count,\n"
      "metadata, and for LoRA files the flavour, rank and target modules. --config implies --to-diffusers.\n",
      {{BIOESP_OPTIONS_WEIGHTS, &opt}}, 1, own, sizeof own / sizeof own[0], NULL, NULL};
  int rc;
  cli_args* args = cli_parse(&command, argc, argv, &rc);
  if (!args) return rc;
  cli_free(args);
  if (!path) {
    fprintf(stderr, "bioesp inspect: missing PATH (see bioesp inspect --help)\n");
    return 2;
  }
  if (steps && !scheduler) scheduler = "";
  if (scheduler) return print_scheduler(path, scheduler, steps ? steps : 50);
  if (opt.config_dir) opt.to_diffusers = 1;
  if (expected) return cmd_expected(path, &opt);
  bioesp_weights* w = NULL;
  if (bioesp_weights_open(path, &opt, &w) != BIOESP_OK) return fail_with(path);

  bioesp_weights_format fmt;
  size_t count = 0, meta = 0;
  bioesp_weights_format_of(w, &fmt);
  bioesp_weights_count(w, &count);
  bioesp_weights_metadata_count(w, &meta);
  printf("path: %s\nformat: %s\n", path, format_name(fmt));

  unsigned long long params = 0, bytes = 0;
  printf("tensors:\n");
  for (size_t i = 0; i < count; ++i) {
    bioesp_tensor_info t = {0};
    t.struct_size = sizeof t;
    if (bioesp_weights_tensor(w, i, &t) != BIOESP_OK) {
      bioesp_weights_close(w);
      return fail_with(path);
    }
    unsigned long long n = 1;
    printf("  %s%s%s  %s  [", t.component, t.component[0] ? "/" : "", t.name, bioesp_dtype_name(t.dtype));
    for (size_t d = 0; d < t.ndim; ++d) {
      printf(d ? ", %lld" : "%lld", (long long)t.shape[d]);
      n *= (unsigned long long)t.shape[d];
    }
    printf("]\n");
    params += n;
    bytes += t.nbytes;
  }
  printf("tensor count: %zu\nparameters: %llu\nbytes: %llu\n", count, params, bytes);
  if (meta) {
    printf("metadata:\n");
    for (size_t i = 0; i < meta; ++i) {
      const char *k, *v;
      bioesp_weights_metadata(w, i, &k, &v);
      printf("  %s = %s\n", k, v);
    }
  }
  bioesp_lora_info lora = {0};
  lora.struct_size = sizeof lora;
  bioesp_weights_lora_info(w, &lora);
  if (lora.flavour != BIOESP_LORA_NONE) {
    printf("lora: %s, rank %lld, %zu target modules\n", flavour_name(lora.flavour), (long long)lora.rank,
           lora.num_targets);
    for (size_t i = 0; i < lora.num_targets; ++i) {
      const char* m;
      bioesp_weights_lora_target(w, i, &m);
      printf("  %s\n", m);
    }
  }
  bioesp_weights_close(w);
  return 0;
}

/* ---- generate ---------------------------------------------------------------------------- */

int parse_long(const char* flag, const char* text, long* out) {
  char* end;
  long v = strtol(text, &end, 10);
  if (!*text || *end) {
    fprintf(stderr, "bioesp: %s needs an integer, not '%s'\n", flag, text);
    return 0;
  }
  *out = v;
  return 1;
}

int steps_progress(void* user, const bioesp_progress* p) {
  if (!*(const int*)user && p->total) {
    int width = 30, filled = (int)(p->current * width / p->total);
    fprintf(stderr, "\r[");
    for (int i = 0; i < width; ++i) fputc(i < filled ? '#' : '.', stderr);
    fprintf(stderr, "] %llu/%llu steps", (unsigned long long)p->current, (unsigned long long)p->total);
    if (p->current == p->total) fputc('\n', stderr);
  }
  return interrupted();
}

const char* model_or_embedded(const char* command, const char* given) {
  if (given && *given) return given;
  const char* embedded = bioesp_embedded_model();
  if (!embedded)
    fprintf(stderr, "bioesp %s: name a model with --model or BIOESP_MODEL (the embedded one is not installed)\n", command);
  return embedded;
}

static int attach_loras(bioesp_model* model, const char* const* specs, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    char file[4096], name[32];
    double scale = 1.0;
    snprintf(file, sizeof file, "%s", specs[i]);
    char* colon = strrchr(file, ':');
    char* end;
    if (colon && colon[1]) {
      double s = strtod(colon + 1, &end);
      if (!*end) { scale = s; *colon = 0; }
    }
    snprintf(name, sizeof name, "lora%zu", i);
    if (bioesp_model_add_lora(model, file, (float)scale, name) != BIOESP_OK) {
      fail_with(file);
      return 0;
    }
  }
  return 1;
}

static int attach_embeddings(bioesp_model* model, const char* const* specs, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    char file[4096];
    const char* token = NULL;
    snprintf(file, sizeof file, "%s", specs[i]);
    char* colon = strrchr(file, ':');
    FILE* whole = fopen(specs[i], "rb");
    if (whole) fclose(whole);
    if (!whole && colon && colon[1]) {
      *colon = 0;
      token = colon + 1;
    }
    if (bioesp_model_add_embedding(model, file, token) != BIOESP_OK) {
      fail_with(file);
      return 0;
    }
  }
  return 1;
}

int attach_all(bioesp_model* model, const cli_attached* a) {
  return attach_loras(model, a->loras.items, a->loras.count) &&
         attach_embeddings(model, a->embeddings.items, a->embeddings.count);
}

void cli_attached_free(cli_attached* a) {
  cli_list_free(&a->loras);
  cli_list_free(&a->embeddings);
}

/* PATH for one image; PATH with -i before the extension for several. */
static void output_name(const char* path, size_t i, size_t n, char* out, size_t size) {
  if (n == 1) {
    snprintf(out, size, "%s", path);
    return;
  }
  const char* dot = strrchr(path, '.');
  const char* slash = strrchr(path, '/');
  if (!dot || (slash && dot < slash)) dot = path + strlen(path);
  snprintf(out, size, "%.*s-%zu%s", (int)(dot - path), path, i, dot);
}

static volatile sig_atomic_t signal_seen = 0;
static void on_signal(int sig) { signal_seen = sig; }

void catch_interrupts(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
}

int interrupted(void) { return signal_seen; }

int interrupted_status(void) { return 128 + (signal_seen ? signal_seen : SIGINT); }

uint64_t random_seed(void) {
  uint64_t seed = 0;
  FILE* f = fopen("/dev/urandom", "rb");
  if (f) {
    if (fread(&seed, sizeof seed, 1, f) != 1) seed = 0;
    fclose(f);
  }
  return seed & 0xFFFFFFFFull;
}

/* --preview-dir: each preview as DIR/step-SSSS-I.png (step, image in the batch). */
static int write_preview(void* user, const bioesp_preview* p) {
  char name[4096];
  snprintf(name, sizeof name, "%s/step-%04d-%zu.png", (const char*)user, p->step, p->index);
  bioesp_images* one = NULL;
  if (bioesp_images_copy(&p->image, 1, &one) != BIOESP_OK || bioesp_images_save(one, 0, name, NULL) != BIOESP_OK) {
    fail_with(name);
    bioesp_images_free(one);
    return 1;
  }
  bioesp_images_free(one);
  return 0;
}

/* --preview-dir: the folder made, and the previews (every step unless --preview-every) sent there. */
static int preview_into(const char* dir, bioesp_generate_options* go) {
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, "bioesp generate: %s: %s\n", dir, strerror(errno));
    return 0;
  }
  if (go->preview_every == 0) go->preview_every = 1;
  go->preview = write_preview;
  go->preview_user = (void*)dir;
  return 1;
}

/* Writes the images as PATH, or PATH-0, PATH-1, … */
static int save_all(const bioesp_images* images, const char* out_path, const bioesp_save_options* so, int quiet) {
  size_t count = 0;
  bioesp_images_count(images, &count);
  for (size_t i = 0; i < count; ++i) {
    char name[4096];
    output_name(out_path, i, count, name, sizeof name);
    if (bioesp_images_save(images, i, name, so) != BIOESP_OK) return fail_with(name);
    if (!quiet) fprintf(stderr, "bioesp: wrote %s\n", name);
  }
  return 0;
}

#define MAX_CONTROLS 16

/* The --control ControlNets (FILE|ID:IMAGE[:SCALE]), their images and their settings. */
typedef struct controls {
  cli_list specs;
  const char* window;     /* --control-window START,END */
  const char* preprocess; /* --preprocess */
  bioesp_controlnet* nets[MAX_CONTROLS];
  bioesp_images* images[MAX_CONTROLS];
  bioesp_image views[MAX_CONTROLS];
  bioesp_control list[MAX_CONTROLS];
} controls;

/* Splits FILE|ID:IMAGE[:SCALE] (in `buf`); 0 after saying why not. */
static int split_control(const char* spec, char* buf, size_t size, const char** image, double* scale) {
  snprintf(buf, size, "%s", spec);
  char* colon = strchr(buf, ':');
  if (!colon || colon == buf || !colon[1]) {
    fprintf(stderr, "bioesp generate: --control needs CONTROLNET:IMAGE[:SCALE], not '%s'\n", spec);
    return 0;
  }
  *colon = 0;
  *image = colon + 1;
  *scale = 1.0;
  char* last = strrchr(colon + 1, ':');
  char* end;
  if (last && last[1]) {
    double v = strtod(last + 1, &end);
    if (!*end) { *scale = v; *last = 0; }
  }
  return 1;
}

/* Loads the ControlNets for `model` and their images into `go`; 0 after saying why not. */
static int load_controls(bioesp_model* model, controls* c, bioesp_generate_options* go) {
  double start = 0, end = 1;
  if (c->window) {
    char* rest;
    start = strtod(c->window, &rest);
    if (rest == c->window || *rest != ',' || (end = strtod(rest + 1, &rest), *rest)) {
      fprintf(stderr, "bioesp generate: --control-window needs START,END (0,1 is every step), not '%s'\n", c->window);
      return 0;
    }
  }
  if (c->specs.count > MAX_CONTROLS) {
    fprintf(stderr, "bioesp generate: at most %d ControlNets\n", MAX_CONTROLS);
    return 0;
  }
  for (size_t k = 0; k < c->specs.count; ++k) {
    char buf[4096];
    const char* picture;
    double scale;
    if (!split_control(c->specs.items[k], buf, sizeof buf, &picture, &scale)) return 0;
    if (bioesp_controlnet_load(model, buf, &c->nets[k]) != BIOESP_OK) { fail_with(buf); return 0; }
    if (bioesp_images_load(picture, &c->images[k]) != BIOESP_OK) { fail_with(picture); return 0; }
    c->views[k].struct_size = sizeof c->views[k];
    bioesp_images_get(c->images[k], 0, &c->views[k]);
    bioesp_control_init(&c->list[k]);
    c->list[k].controlnet = c->nets[k];
    c->list[k].image = &c->views[k];
    c->list[k].preprocess = c->preprocess;
    c->list[k].scale = (float)scale;
    c->list[k].start = (float)start;
    c->list[k].end = (float)end;
  }
  go->controls = c->list;
  go->num_controls = c->specs.count;
  return 1;
}

static void free_controls(controls* c) {
  for (size_t k = 0; k < MAX_CONTROLS; ++k) {
    bioesp_controlnet_free(c->nets[k]);
    bioesp_images_free(c->images[k]);
  }
  cli_list_free(&c->specs);
}

/* Draws with the parsed options: model, LoRAs, ControlNets, generation, the grid, the files. */
static int run_generate(const char* model_path, const bioesp_model_options* mo, const cli_attached* attached,
                        controls* cn, bioesp_generate_options* go, const bioesp_save_options* so, long grid_columns,
                        long grid_cell, const char* out_path, int quiet) {
  bioesp_model* model = NULL;
  bioesp_images* images = NULL;
  int rc = 1;
  if (bioesp_model_load(model_path, mo, &model) != BIOESP_OK) return fail_with(model_path);
  if (!attach_all(model, attached)) goto done;
  if (!load_controls(model, cn, go)) goto done;
  bioesp_status st = bioesp_generate(model, go, &images);
  if (st == BIOESP_ERR_CANCELLED) {
    fprintf(stderr, "\nbioesp generate: %s\n", bioesp_last_error());
    rc = interrupted_status();
    goto done;
  }
  if (st != BIOESP_OK) { fail_with("generate"); goto done; }
  if (grid_columns) {
    bioesp_images* sheet = NULL;
    if (bioesp_images_grid(images, (uint32_t)grid_columns, (uint32_t)grid_cell, &sheet) != BIOESP_OK) { fail_with("grid"); goto done; }
    bioesp_images_free(images);
    images = sheet;
  }
  rc = save_all(images, out_path, so, quiet);
done:
  bioesp_images_free(images);
  bioesp_model_free(model);
  return rc;
}

static int cmd_generate(int argc, char** argv) {
  const char* model_path = getenv("BIOESP_MODEL");
  const char* out_path = "creature.png";
  long grid_columns = 0, grid_cell = 0;
  cli_int grid = {&grid_columns, 1, 1024}, cell = {&grid_cell, 0, 8192};
  cli_attached attached = {{0}, {0}};
  controls cn;
  memset(&cn, 0, sizeof cn);
  int quiet = 0;
  bioesp_model_options mo;
  bioesp_model_options_init(&mo);
  mo.log = print_log;
  bioesp_generate_options go;
  bioesp_generate_options_init(&go);
  go.log = print_log;
  bioesp_save_options so;
  bioesp_save_options_init(&so);
  const char* preview_dir = NULL;
  const cli_flag own[] = {
      CLI_MODEL_FLAGS(&model_path, &attached),
      {"preview-dir", "DIR", "write each live preview as DIR/step-SSSS-I.png (every step unless --preview-every)", cli_text,
       &preview_dir},
      {"out", "PATH", ".png or .jpg; several images get -0, -1, … before the extension (default creature.png)", cli_text, &out_path},
      {"grid", "COLS", "all images in one picture, COLS per row (a row per prompt when COLS is --num-images)", cli_integer, &grid},
      {"grid-cell", "PX", "the grid's cells scaled to PX pixels (default the images' size)", cli_integer, &cell},
      {"control", "FILE|ID:IMAGE[:SCALE]", "a ControlNet and its control image, scale 1 (repeatable: summed)", cli_append, &cn.specs},
      {"control-window", "START,END", "the share of the steps the ControlNets act on (default 0,1)", cli_text, &cn.window},
      {"preprocess", "none|canny|scribble", "what the control images are made into first (default none)", cli_text, &cn.preprocess},
      {"quiet", NULL, "no progress bar", cli_switch, &quiet}};
  static const char* const defaults[] = {"seed", "random (printed)", NULL};
  const cli_command command = {
      "generate", "--prompt TEXT [options]",
      "Draws images with a Stable Diffusion model; PNG files keep the prompt, seed and settings.\n",
      {{BIOESP_OPTIONS_MODEL, &mo}, {BIOESP_OPTIONS_GENERATE, &go}, {BIOESP_OPTIONS_SAVE, &so}}, 3,
      own, sizeof own / sizeof own[0], NULL, defaults};
  int rc;
  cli_args* args = cli_parse(&command, argc, argv, &rc);
  if (!args) {
    cli_attached_free(&attached);
    free_controls(&cn);
    return rc;
  }
  rc = 2;
  if (go.num_prompts == 0) fprintf(stderr, "bioesp generate: --prompt is required\n");
  else if ((model_path = model_or_embedded("generate", model_path))) {
    if (!cli_given(args, "seed")) {
      go.seed = random_seed();
      fprintf(stderr, "bioesp: seed %llu\n", (unsigned long long)go.seed);
    }
    go.progress = steps_progress;
    go.progress_user = &quiet;
    /* Painting into a picture repaints from noise unless asked otherwise, as diffusers'
       inpainting pipeline (strength 1) does. */
    const int painting = go.mask || go.outpaint_left || go.outpaint_top || go.outpaint_right || go.outpaint_bottom;
    if (painting && !cli_given(args, "strength")) go.strength = 1.0f;
    catch_interrupts();
    if (preview_dir && !preview_into(preview_dir, &go)) rc = 1;
    else rc = run_generate(model_path, &mo, &attached, &cn, &go, &so, grid_columns, grid_cell, out_path, quiet);
  }
  cli_free(args);
  cli_attached_free(&attached);
  free_controls(&cn);
  return rc;
}

int main(int argc, char** argv) {
  if (bioesp_check_version(BIOESP_VERSION_NUMBER) != BIOESP_OK) return fail_with("version");
  if (argc < 2) {
    cli_print_commands(stderr);
    return 2;
  }
  const char* cmd = argv[1];
  if (strcmp(cmd, "--version") == 0) {
    printf("bioesp %s\n", bioesp_version_string());
    return 0;
  }
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
    cli_print_commands(stdout);
    return 0;
  }
  if (strcmp(cmd, "inspect") == 0) return cmd_inspect(argc - 2, argv + 2);
  if (strcmp(cmd, "generate") == 0) return cmd_generate(argc - 2, argv + 2);
  if (strcmp(cmd, "train") == 0) return cmd_train(argc - 2, argv + 2);
  if (strcmp(cmd, "new-model") == 0) return cmd_new_model(argc - 2, argv + 2);
  if (strcmp(cmd, "evaluate") == 0) return cmd_evaluate(argc - 2, argv + 2);
  if (strcmp(cmd, "fetch") == 0) return cmd_fetch(argc - 2, argv + 2);
  if (strcmp(cmd, "pull") == 0) return cmd_pull(argc - 2, argv + 2);
  if (strcmp(cmd, "animate") == 0) return cmd_animate(argc - 2, argv + 2);
  if (strcmp(cmd, "push") == 0) return cmd_push(argc - 2, argv + 2);
  if (strcmp(cmd, "prepare") == 0) return cmd_prepare(argc - 2, argv + 2);
  if (strcmp(cmd, "studio") == 0) {
#ifdef BIOESP_CLI_STUDIO
    return cmd_studio(argc - 2, argv + 2);
#else
    fprintf(stderr, "bioesp: this build has no studio (cpp-httplib was not found when it was built)\n");
    return 2;
#endif
  }
  fprintf(stderr, "bioesp: unknown command '%s' (bioesp --help lists them)\n", cmd);
  return 2;
}
