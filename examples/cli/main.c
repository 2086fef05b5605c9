/* bioesp — the command-line tool. It uses only the public C API in bioesp.h. */
#include <bioesp.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static const char* const kUsage =
    "usage: bioesp <command> [options]\n"
    "\n"
    "commands:\n"
    "  inspect PATH [--to-diffusers] [--config DIR] [--expected] [--scheduler NAME] [--steps N]\n"
    "      List the tensors of a weight file (safetensors, .ckpt/.pt/.bin, sharded index)\n"
    "      or a diffusers folder: format, name, dtype, shape, parameter count, metadata,\n"
    "      and for LoRA files the flavour, rank and target modules. --to-diffusers renames\n"
    "      an original single-file checkpoint to diffusers components (--config: a diffusers\n"
    "      folder describing its architecture; otherwise inferred from the shapes).\n"
    "      --expected compares the tensors present with those the architecture's configs\n"
    "      expect and lists the missing, unexpected and mismatched ones (exit 1 if any).\n"
    "      --scheduler NAME[:KEY=VALUE,...] (\"\" for the model's own) prints as JSON the full\n"
    "      config the model's scheduler gets under that name, as diffusers' from_config builds\n"
    "      it, and its timesteps and sigmas for --steps N (50).\n"
    "\n"
    "  generate --prompt TEXT [options]\n"
    "      Draws images with a Stable Diffusion model. Options:\n"
    "        --model DIR|FILE|ID     diffusers folder, single file or Hub id ORG/NAME[@REV]\n"
    "                                (default: $BIOESP_MODEL, else the embedded model)\n"
    "        --config DIR            configs and tokenizer for a single file\n"
    "        --prompt TEXT           repeatable: a batch of prompts\n"
    "        --negative-prompt TEXT  --steps N (50)  --guidance F (7.5)  --seed N (random)\n"
    "        --scheduler NAME        pndm|ddim|euler|euler_a|dpmpp_2m|dpmpp_2m_karras|unipc\n"
    "        --width W --height H    multiples of 8 (default: the model's size)\n"
    "        --num-images N          images per prompt\n"
    "        --init-image FILE --strength F   img2img (strength 0.8)\n"
    "        --lora FILE|ID[:SCALE]  repeatable\n"
    "        --clip-skip N  --device cpu|cuda  --dtype f32|f16|bf16  --threads N\n"
    "        --device-generator      draw noise on the device (else on the CPU, as diffusers)\n"
    "        --vae-tiles PX          decode in PX-pixel tiles: large images in less memory,\n"
    "                                the same pixels\n"
    "        --tiling none|x|y|both  textures that repeat without seams along those axes\n"
    "        --background opaque|transparent   transparent: a plain backdrop matted away (RGBA PNG)\n"
    "        --vae DIR|FILE|ID       another autoencoder: a full VAE, or TAESD (madebyollin/taesd,\n"
    "                                taesd_decoder.pth ...) drawing in a fraction of the time\n"
    "        --preview-vae DIR|FILE|ID   a TAESD that decodes only the previews\n"
    "        --preview-dir DIR --preview-every N   write what each image looks like every N\n"
    "                                steps (DIR/step-0005-0.png ...)\n"
    "        --cache-interval N --cache-branch B   step caching (DeepCache): a full UNet pass\n"
    "                                every N steps, only the shallow branch to skip B between\n"
    "        --out PATH              .png or .jpg; several images get -0, -1, ... (creature.png)\n"
    "        --grid COLS [--grid-cell PX]   all images in one picture, COLS per row (a row per\n"
    "                                prompt when COLS is --num-images), cells scaled to PX\n"
    "        --quiet                 no progress bar\n"
    "\n"
    "  animate --prompt A [--prompt B ...] [--seed N ...] [options]\n"
    "      Morphs between creatures: keyframes are prompts and seeds (as many of each, or one\n"
    "      of either); frames interpolate the starting noise spherically and the text\n"
    "      embeddings linearly. Options: --model DIR|FILE|ID ($BIOESP_MODEL, else embedded)  --frames N (16)\n"
    "      --fps F (8)  --pingpong  --no-loop  --quality Q (80)  --steps N (25)  --guidance F\n"
    "      --negative-prompt TEXT  --scheduler NAME  --width W --height H  --lora FILE|ID[:S]\n"
    "      --vae-tiles PX  --threads N  --quiet  --out creature.gif|.mp4|.webm|FOLDER (PNG frames)\n"
    "\n"
    "  fetch --category NAME | --campaign NAME | --search TEXT | --titles FILE --out DIR [options]\n"
    "      Downloads openly licensed images from Wikimedia Commons with their authors and\n"
    "      licenses (manifest.jsonl, ATTRIBUTION.md). Options: --limit N  --seed N\n"
    "      --width W (500; Commons' standard widths)  --original  --licenses cc0,pd,cc-by,cc-by-sa\n"
    "      --allow-restricted  --keywords A,B  --contact EMAIL|URL  --api URL ($BIOESP_COMMONS_API)\n"
    "      --retries N  --retry-delay S  --quiet. Rerunning continues; Ctrl-C keeps what finished.\n"
    "\n"
    "  prepare IN_DIR --out DIR [--size N (512)] [--crop center|attention|pad] [--caption TEXT]\n"
    "          [--caption-from-metadata] [--background RRGGBB] [--near-duplicates BITS (4)]\n"
    "      Squares (never stretches) and resizes images for training, with captions, duplicate\n"
    "      detection and the manifest and attribution carried over.\n"
    "\n"
    "  train --model DIR|FILE --data DIR --prompt TEXT --out DIR [options]\n"
    "      Fine-tunes with DreamBooth-LoRA (as diffusers' train_dreambooth_lora.py) or, with\n"
    "      --full, every UNet weight. Options (defaults in brackets):\n"
    "        --config DIR             configs and tokenizer for a single-file model\n"
    "        --class-data DIR --class-prompt TEXT [--prior-weight F (1)] [--num-class-images N]\n"
    "                                 prior preservation; missing class images are generated\n"
    "        --resolution N (512)  --random-crop  --flip  --no-captions  --cache-latents\n"
    "        --steps N  --epochs N (1)  --batch N (1)  --grad-accum N (1)\n"
    "        --lr F (1e-4)  --scale-lr  --lr-scheduler NAME (constant)  --warmup N (0)\n"
    "        --lr-cycles N  --lr-power F  --adam-beta1 F  --adam-beta2 F  --weight-decay F\n"
    "        --adam-epsilon F  --max-grad-norm F (1)\n"
    "        --rank N (4)  --alpha F (rank)  --lora-dropout F  --train-text-encoder  --full\n"
    "        --noise-offset F  --snr-gamma F  --mixed-precision no|fp16|bf16  --gradient-checkpointing\n"
    "        --seed N  --checkpoint-every N  --checkpoints-kept N (3)  --resume\n"
    "        --validation-prompt TEXT  --validation-every N  --validation-steps N (25)\n"
    "        --kohya                  also write kohya_lora.safetensors\n"
    "        --tag-dropout F  --shuffle-tags  --caption-dropout F   vary comma-separated captions\n"
    "        --train-vae [--kl-weight F (1e-6)]   the VAE alone (training from scratch)\n"
    "        --save-half              write a model folder in float16\n"
    "        --device cpu|cuda  --threads N  --quiet\n"
    "      Ctrl-C writes a checkpoint; run again with --resume to continue.\n"
    "\n"
    "  new-model --configs DIR --data DIR --out DIR [--vocab-size N] [--seed N]\n"
    "      A model folder to train from scratch: weights initialised from the component configs,\n"
    "      a CLIP BPE vocabulary learned from the dataset's captions. Then train --train-vae, then\n"
    "      train --full --train-text-encoder (scripts/embedded-model/train.sh does it all).\n"
    "\n"
    "  pull ORG/NAME[@REVISION] [--include GLOB]... [--variant fp16] [--offline]\n"
    "      Downloads a model from the Hugging Face Hub into the cache huggingface_hub shares\n"
    "      ($HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub) and prints its folder.\n"
    "      Without --include, only what a pipeline needs. Every file is verified; interrupted\n"
    "      downloads resume. Options: --revision REV  --cache-dir DIR  --endpoint URL\n"
    "      ($HF_ENDPOINT)  --token TOKEN ($HF_TOKEN, $HF_HOME/token)  --retries N\n"
    "      --retry-delay S  --quiet. Model ids work wherever a model path does.\n"
    "\n"
    "  push LORA_OR_FOLDER --repo ORG/NAME [--private] [--token TOKEN] [options]\n"
    "      Publishes a LoRA or a training output folder, with a model card that credits\n"
    "      every dataset image. Options: --message TEXT  --base-model ID  --dataset DIR\n"
    "      --endpoint URL  --retries N  --retry-delay S  --quiet\n"
    "\n"
    "  studio [--model DIR|FILE|ID] [--dir DIR] [--port N] [options]\n"
    "      The workshop studio in the browser: generate (live progress, cancel), a gallery\n"
    "      whose pictures keep their settings, datasets with their authors and licenses, and\n"
    "      LoRA training with a live loss chart; Spanish and English. Listens on 127.0.0.1\n"
    "      only. Options: --dir DIR (bioesp-studio: gallery/, trainings/, datasets/, loras/)\n"
    "      --datasets DIR  --loras DIR  --port N (7860; 0: any free port)  --lang es|en\n"
    "      --host ADDR (other machines may connect: no password)  --device cpu|cuda\n"
    "      --threads N  --open (open it in the desktop's browser)  --contact EMAIL|URL and\n"
    "      --commons-api URL (datasets from Wikimedia Commons, as bioesp fetch)\n"
    "\n"
    "  --version   print the library version\n"
    "  --help      print this help\n";

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
  long steps = 50;
  int expected = 0;
  bioesp_weights_options opt;
  bioesp_weights_options_init(&opt);
  opt.log = print_log;
  for (int i = 0; i < argc; ++i) {
    if (strcmp(argv[i], "--expected") == 0) {
      expected = 1;
    } else if (strcmp(argv[i], "--to-diffusers") == 0) {
      opt.to_diffusers = 1;
    } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
      opt.config_dir = argv[++i];
      opt.to_diffusers = 1;
    } else if (strcmp(argv[i], "--scheduler") == 0 && i + 1 < argc) {
      scheduler = argv[++i];
    } else if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc) {
      if (!parse_long("--steps", argv[++i], &steps)) return 2;
      if (!scheduler) scheduler = "";
    } else if (argv[i][0] == '-') {
      fprintf(stderr, "bioesp inspect: unknown option %s\n", argv[i]);
      return 2;
    } else if (!path) {
      path = argv[i];
    } else {
      fprintf(stderr, "bioesp inspect: one PATH only\n");
      return 2;
    }
  }
  if (!path) {
    fprintf(stderr, "bioesp inspect: missing PATH\n%s", kUsage);
    return 2;
  }
  if (scheduler) return print_scheduler(path, scheduler, steps);
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

#define MAX_PROMPTS 64
#define MAX_LORAS 16

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

int parse_double(const char* flag, const char* text, double* out) {
  char* end;
  double v = strtod(text, &end);
  if (!*text || *end) {
    fprintf(stderr, "bioesp: %s needs a number, not '%s'\n", flag, text);
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

int attach_loras(bioesp_model* model, const char* const* specs, size_t n) {
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

static volatile sig_atomic_t sigint_seen = 0;
static void on_sigint(int sig) {
  (void)sig;
  sigint_seen = 1;
}

void catch_sigint(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigaction(SIGINT, &sa, NULL);
}

int interrupted(void) { return sigint_seen != 0; }

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

static int cmd_generate(int argc, char** argv) {
  const char* model_path = getenv("BIOESP_MODEL");
  const char* out_path = "creature.png";
  uint32_t grid_columns = 0, grid_cell = 0;
  const char* init_path = NULL;
  const char* preview_dir = NULL;
  const char* prompts[MAX_PROMPTS];
  const char* loras[MAX_LORAS];
  size_t num_prompts = 0, num_loras = 0;
  int quiet = 0, have_seed = 0;
  bioesp_model_options mo;
  bioesp_model_options_init(&mo);
  mo.log = print_log;
  bioesp_generate_options go;
  bioesp_generate_options_init(&go);
  go.log = print_log;
  for (int i = 0; i < argc; ++i) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : NULL;
    long n;
    double d;
    if (strcmp(a, "--quiet") == 0) { quiet = 1; continue; }
    if (strcmp(a, "--device-generator") == 0) { go.device_generator = 1; continue; }
    if (!v) {
      fprintf(stderr, "bioesp generate: %s needs a value\n", a);
      return 2;
    }
    ++i;
    if (strcmp(a, "--model") == 0) model_path = v;
    else if (strcmp(a, "--config") == 0) mo.config_dir = v;
    else if (strcmp(a, "--prompt") == 0) {
      if (num_prompts == MAX_PROMPTS) { fprintf(stderr, "bioesp generate: at most %d prompts\n", MAX_PROMPTS); return 2; }
      prompts[num_prompts++] = v;
    } else if (strcmp(a, "--negative-prompt") == 0) go.negative_prompt = v;
    else if (strcmp(a, "--steps") == 0) { if (!parse_long(a, v, &n)) return 2; go.steps = (int)n; }
    else if (strcmp(a, "--guidance") == 0) { if (!parse_double(a, v, &d)) return 2; go.guidance = (float)d; }
    else if (strcmp(a, "--seed") == 0) {
      char* end;
      unsigned long long s = strtoull(v, &end, 10);
      if (!*v || *end || v[0] == '-') { fprintf(stderr, "bioesp generate: --seed needs a non-negative integer\n"); return 2; }
      go.seed = s;
      have_seed = 1;
    } else if (strcmp(a, "--scheduler") == 0) go.scheduler = v;
    else if (strcmp(a, "--width") == 0) { if (!parse_long(a, v, &n)) return 2; go.width = (int)n; }
    else if (strcmp(a, "--height") == 0) { if (!parse_long(a, v, &n)) return 2; go.height = (int)n; }
    else if (strcmp(a, "--num-images") == 0) { if (!parse_long(a, v, &n)) return 2; go.images_per_prompt = (int)n; }
    else if (strcmp(a, "--init-image") == 0) init_path = v;
    else if (strcmp(a, "--strength") == 0) { if (!parse_double(a, v, &d)) return 2; go.strength = (float)d; }
    else if (strcmp(a, "--lora") == 0) {
      if (num_loras == MAX_LORAS) { fprintf(stderr, "bioesp generate: at most %d LoRAs\n", MAX_LORAS); return 2; }
      loras[num_loras++] = v;
    } else if (strcmp(a, "--clip-skip") == 0) { if (!parse_long(a, v, &n)) return 2; go.clip_skip = (int)n; }
    else if (strcmp(a, "--vae-tiles") == 0) { if (!parse_long(a, v, &n)) return 2; go.vae_tile_size = (int)n; }
    else if (strcmp(a, "--tiling") == 0) go.tiling = v;
    else if (strcmp(a, "--background") == 0) go.background = v;
    else if (strcmp(a, "--vae") == 0) mo.vae = v;
    else if (strcmp(a, "--preview-vae") == 0) mo.preview_vae = v;
    else if (strcmp(a, "--preview-dir") == 0) preview_dir = v;
    else if (strcmp(a, "--preview-every") == 0) { if (!parse_long(a, v, &n)) return 2; go.preview_every = (int)n; }
    else if (strcmp(a, "--cache-interval") == 0) { if (!parse_long(a, v, &n)) return 2; go.cache_interval = (int)n; }
    else if (strcmp(a, "--cache-branch") == 0) { if (!parse_long(a, v, &n)) return 2; go.cache_branch = (int)n; }
    else if (strcmp(a, "--threads") == 0) { if (!parse_long(a, v, &n)) return 2; mo.threads = (int)n; }
    else if (strcmp(a, "--device") == 0) {
      if (strcmp(v, "cpu") == 0) mo.device = BIOESP_DEVICE_CPU;
      else if (strcmp(v, "cuda") == 0) mo.device = BIOESP_DEVICE_CUDA;
      else { fprintf(stderr, "bioesp generate: --device is cpu or cuda\n"); return 2; }
    } else if (strcmp(a, "--dtype") == 0) {
      if (strcmp(v, "f32") == 0) mo.dtype = BIOESP_DTYPE_F32;
      else if (strcmp(v, "f16") == 0) mo.dtype = BIOESP_DTYPE_F16;
      else if (strcmp(v, "bf16") == 0) mo.dtype = BIOESP_DTYPE_BF16;
      else { fprintf(stderr, "bioesp generate: --dtype is f32, f16 or bf16\n"); return 2; }
    } else if (strcmp(a, "--out") == 0) out_path = v;
    else if (strcmp(a, "--grid") == 0) {
      if (!parse_long(a, v, &n)) return 2;
      if (n < 1 || n > 1024) { fprintf(stderr, "bioesp generate: --grid needs 1 to 1024 columns\n"); return 2; }
      grid_columns = (uint32_t)n;
    } else if (strcmp(a, "--grid-cell") == 0) {
      if (!parse_long(a, v, &n)) return 2;
      if (n < 0 || n > 8192) { fprintf(stderr, "bioesp generate: --grid-cell is 0 to 8192 pixels\n"); return 2; }
      grid_cell = (uint32_t)n;
    }
    else {
      fprintf(stderr, "bioesp generate: unknown option %s\n", a);
      return 2;
    }
  }
  if (num_prompts == 0) { fprintf(stderr, "bioesp generate: --prompt is required\n"); return 2; }
  if (!model_path || !*model_path) model_path = bioesp_embedded_model();
  if (!model_path) { fprintf(stderr, "bioesp generate: name a model with --model or BIOESP_MODEL (the embedded one is not installed)\n"); return 2; }
  if (!have_seed) {
    go.seed = random_seed();
    fprintf(stderr, "bioesp: seed %llu\n", (unsigned long long)go.seed);
  }
  go.prompts = prompts;
  go.num_prompts = num_prompts;
  go.progress = steps_progress;
  go.progress_user = &quiet;
  if (preview_dir) {
    if (mkdir(preview_dir, 0777) != 0 && errno != EEXIST) {
      fprintf(stderr, "bioesp generate: %s: %s\n", preview_dir, strerror(errno));
      return 1;
    }
    if (go.preview_every == 0) go.preview_every = 1;
    go.preview = write_preview;
    go.preview_user = (void*)preview_dir;
  }
  catch_sigint();

  bioesp_model* model = NULL;
  bioesp_images *init = NULL, *images = NULL;
  int rc = 1;
  bioesp_image init_view = {0};
  init_view.struct_size = sizeof init_view;
  if (bioesp_model_load(model_path, &mo, &model) != BIOESP_OK) return fail_with(model_path);
  if (!attach_loras(model, loras, num_loras)) goto done;
  if (init_path) {
    if (bioesp_images_load(init_path, &init) != BIOESP_OK) { fail_with(init_path); goto done; }
    bioesp_images_get(init, 0, &init_view);
    go.init_image = &init_view;
  }
  bioesp_status st = bioesp_generate(model, &go, &images);
  if (st == BIOESP_ERR_CANCELLED) { fprintf(stderr, "\nbioesp generate: %s\n", bioesp_last_error()); rc = 130; goto done; }
  if (st != BIOESP_OK) { fail_with("generate"); goto done; }
  if (grid_columns) {
    bioesp_images* sheet = NULL;
    if (bioesp_images_grid(images, grid_columns, grid_cell, &sheet) != BIOESP_OK) { fail_with("grid"); goto done; }
    bioesp_images_free(images);
    images = sheet;
  }
  size_t count = 0;
  bioesp_images_count(images, &count);
  for (size_t i = 0; i < count; ++i) {
    char name[4096];
    output_name(out_path, i, count, name, sizeof name);
    if (bioesp_images_save(images, i, name, NULL) != BIOESP_OK) { fail_with(name); goto done; }
    if (!quiet) fprintf(stderr, "bioesp: wrote %s\n", name);
  }
  rc = 0;
done:
  bioesp_images_free(images);
  bioesp_images_free(init);
  bioesp_model_free(model);
  return rc;
}

int main(int argc, char** argv) {
  if (bioesp_check_version(BIOESP_VERSION_NUMBER) != BIOESP_OK) return fail_with("version");
  if (argc < 2) {
    fputs(kUsage, stderr);
    return 2;
  }
  const char* cmd = argv[1];
  if (strcmp(cmd, "--version") == 0) {
    printf("bioesp %s\n", bioesp_version_string());
    return 0;
  }
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
    fputs(kUsage, stdout);
    return 0;
  }
  if (strcmp(cmd, "inspect") == 0) return cmd_inspect(argc - 2, argv + 2);
  if (strcmp(cmd, "generate") == 0) return cmd_generate(argc - 2, argv + 2);
  if (strcmp(cmd, "train") == 0) return cmd_train(argc - 2, argv + 2);
  if (strcmp(cmd, "new-model") == 0) return cmd_new_model(argc - 2, argv + 2);
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
  fprintf(stderr, "bioesp: unknown command '%s'\n%s", cmd, kUsage);
  return 2;
}
