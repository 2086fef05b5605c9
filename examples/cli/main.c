/* bioesp — the command-line tool. It uses only the public C API in bioesp.h. */
#include <bioesp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char* const kUsage =
    "usage: bioesp <command> [options]\n"
    "\n"
    "commands:\n"
    "  inspect PATH [--to-diffusers] [--config DIR] [--expected]\n"
    "      List the tensors of a weight file (safetensors, .ckpt/.pt/.bin, sharded index)\n"
    "      or a diffusers folder: format, name, dtype, shape, parameter count, metadata,\n"
    "      and for LoRA files the flavour, rank and target modules. --to-diffusers renames\n"
    "      an original single-file checkpoint to diffusers components (--config: a diffusers\n"
    "      folder describing its architecture; otherwise inferred from the shapes).\n"
    "      --expected compares the tensors present with those the architecture's configs\n"
    "      expect and lists the missing, unexpected and mismatched ones (exit 1 if any).\n"
    "\n"
    "  --version   print the library version\n"
    "  --help      print this help\n";

static int fail_with(const char* what) {
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

static void print_log(void* user, bioesp_log_level level, const char* message) {
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

static int cmd_inspect(int argc, char** argv) {
  const char* path = NULL;
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
  fprintf(stderr, "bioesp: unknown command '%s'\n%s", cmd, kUsage);
  return 2;
}
