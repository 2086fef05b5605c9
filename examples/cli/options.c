/* The commands' flag parser and --help, over the library's options table (see options.h). */
#include "options.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char* cli_text(void* target, const char* value) {
  *(const char**)target = value;
  return NULL;
}

const char* cli_switch(void* target, const char* value) {
  (void)value;
  *(int*)target = 1;
  return NULL;
}

static int grow(void** items, size_t count, size_t size) {
  void* more = realloc(*items, (count + 1) * size);
  if (!more) {
    fprintf(stderr, "bioesp: out of memory\n");
    return 0;
  }
  *items = more;
  return 1;
}

const char* cli_append(void* target, const char* value) {
  cli_list* list = target;
  if (!grow((void**)&list->items, list->count, sizeof *list->items)) return "out of memory";
  list->items[list->count++] = value;
  return NULL;
}

void cli_list_free(cli_list* list) {
  free(list->items);
  list->items = NULL;
  list->count = 0;
}

const char* cli_integer(void* target, const char* value) {
  static char why[96];
  cli_int* t = target;
  char* end;
  errno = 0;
  long v = strtol(value, &end, 10);
  if (!*value || *end || errno || v < t->min || v > t->max) {
    snprintf(why, sizeof why, "needs an integer from %ld to %ld", t->min, t->max);
    return why;
  }
  *t->value = v;
  return NULL;
}

/* A list flag's values until they are handed to the options struct. */
typedef struct pending_list {
  bioesp_options_kind kind;
  void* options;
  const char* name;
  bioesp_option_type type;
  void* items; /* const char** or uint64_t* */
  size_t count;
} pending_list;

struct cli_args {
  const cli_command* command;
  pending_list* lists;
  size_t num_lists;
  bioesp_images** images;
  bioesp_image** views; /* each image's pixels, as the options point to them (one allocation each:
                           they stay put while more are loaded) */
  size_t num_images;
  const char** given; /* library option names (static storage) */
  size_t num_given;
};

int cli_given(const cli_args* a, const char* name) {
  for (size_t i = 0; i < a->num_given; ++i)
    if (strcmp(a->given[i], name) == 0) return 1;
  return 0;
}

void cli_free(cli_args* a) {
  if (!a) return;
  for (size_t i = 0; i < a->num_lists; ++i) free(a->lists[i].items);
  for (size_t i = 0; i < a->num_images; ++i) {
    bioesp_images_free(a->images[i]);
    free(a->views[i]);
  }
  free(a->lists);
  free(a->images);
  free(a->views);
  free(a->given);
  free(a);
}

/* ---- parsing ------------------------------------------------------------------------------ */

/* The library option whose flag is `flag` (or, for a BOOL, "no-" + its flag). */
static int find_flag(const cli_command* c, const char* flag, const cli_kind** kind, bioesp_option* info, int* negated) {
  for (int pass = 0; pass < 2; ++pass) {
    const char* want = pass == 0 ? flag : strncmp(flag, "no-", 3) == 0 ? flag + 3 : NULL;
    for (size_t k = 0; want && k < c->num_kinds; ++k) {
      info->struct_size = sizeof *info;
      if (bioesp_option_find(c->kinds[k].kind, want, info) != BIOESP_OK || !info->flag || strcmp(info->flag, want) != 0) continue;
      if (pass == 1 && info->type != BIOESP_OPTION_BOOL) continue;
      *kind = &c->kinds[k];
      *negated = pass == 1;
      return 1;
    }
  }
  return 0;
}

static const cli_flag* find_own(const cli_command* c, const char* flag) {
  for (size_t i = 0; i < c->num_own; ++i)
    if (flag ? c->own[i].flag && strcmp(c->own[i].flag, flag) == 0 : !c->own[i].flag) return &c->own[i];
  return NULL;
}

static pending_list* pending(cli_args* a, const cli_kind* kind, const bioesp_option* info) {
  for (size_t i = 0; i < a->num_lists; ++i)
    if (a->lists[i].options == kind->options && strcmp(a->lists[i].name, info->name) == 0) return &a->lists[i];
  if (!grow((void**)&a->lists, a->num_lists, sizeof *a->lists)) return NULL;
  pending_list* l = &a->lists[a->num_lists++];
  memset(l, 0, sizeof *l);
  l->kind = kind->kind;
  l->options = kind->options;
  l->name = info->name;
  l->type = info->type;
  return l;
}

static int add_item(cli_args* a, const cli_kind* kind, const bioesp_option* info, const char* value) {
  pending_list* l = pending(a, kind, info);
  if (!l) return 0;
  if (l->type == BIOESP_OPTION_STRING_LIST) {
    if (!grow(&l->items, l->count, sizeof(const char*))) return 0;
    ((const char**)l->items)[l->count++] = value;
    return 1;
  }
  char* end;
  errno = 0;
  unsigned long long v = strtoull(value, &end, 10);
  if (!*value || *value == '-' || *value == '+' || *end || errno) {
    fprintf(stderr, "bioesp %s: --%s needs a non-negative integer, not '%s'\n", a->command->name, info->flag, value);
    return 0;
  }
  if (!grow(&l->items, l->count, sizeof(uint64_t))) return 0;
  ((uint64_t*)l->items)[l->count++] = v;
  return 1;
}

static int load_image(cli_args* a, const cli_kind* kind, const bioesp_option* info, const char* path) {
  if (!grow((void**)&a->images, a->num_images, sizeof *a->images) || !grow((void**)&a->views, a->num_images, sizeof *a->views))
    return 0;
  bioesp_images* set = NULL;
  if (bioesp_images_load(path, &set) != BIOESP_OK) {
    fprintf(stderr, "bioesp %s: %s: %s\n", a->command->name, path, bioesp_last_error());
    return 0;
  }
  bioesp_image* view = calloc(1, sizeof *view);
  if (!view) {
    bioesp_images_free(set);
    fprintf(stderr, "bioesp %s: out of memory\n", a->command->name);
    return 0;
  }
  a->images[a->num_images] = set;
  a->views[a->num_images++] = view;
  view->struct_size = sizeof *view;
  return bioesp_images_get(set, 0, view) == BIOESP_OK &&
         bioesp_option_set_list(kind->kind, kind->options, info->name, view, 1) == BIOESP_OK;
}

/* Sets a library option from the command line; 0 after printing why not. */
static int apply_option(cli_args* a, const cli_kind* kind, const bioesp_option* info, int negated, const char* value) {
  if (!grow((void**)&a->given, a->num_given, sizeof *a->given)) return 0;
  a->given[a->num_given++] = info->name;
  switch (info->type) {
    case BIOESP_OPTION_STRING_LIST:
    case BIOESP_OPTION_UINT64_LIST: return add_item(a, kind, info, value);
    case BIOESP_OPTION_IMAGE: return load_image(a, kind, info, value);
    default: break;
  }
  if (info->type == BIOESP_OPTION_BOOL) value = negated ? "0" : "1";
  if (bioesp_option_set(kind->kind, kind->options, info->name, value) == BIOESP_OK) return 1;
  fprintf(stderr, "bioesp %s: %s (--%s)\n", a->command->name, bioesp_last_error(), info->flag);
  return 0;
}

static int apply_own(const cli_command* c, const cli_flag* f, const char* value) {
  const char* why = f->apply(f->target, value);
  if (!why) return 1;
  fprintf(stderr, "bioesp %s: %s%s: %s\n", c->name, f->flag ? "--" : "", f->flag ? f->flag : f->value, why);
  return 0;
}

static int bare_argument(cli_args* a, const char* arg) {
  const cli_command* c = a->command;
  if (c->positional) {
    bioesp_option info = {0};
    info.struct_size = sizeof info;
    if (cli_given(a, c->positional)) {
      fprintf(stderr, "bioesp %s: one argument only ('%s' is one more)\n", c->name, arg);
      return 0;
    }
    bioesp_option_find(c->kinds[0].kind, c->positional, &info);
    return apply_option(a, &c->kinds[0], &info, 0, arg);
  }
  const cli_flag* own = find_own(c, NULL);
  if (own) return apply_own(c, own, arg);
  fprintf(stderr, "bioesp %s: unexpected argument '%s'\n", c->name, arg);
  return 0;
}

static void print_help(const cli_command* c);

/* One argument (and its value): 1 to go on, 0 for an error (printed), -1 after --help. */
static int parse_one(cli_args* a, int argc, char** argv, int* i) {
  const cli_command* c = a->command;
  const char* arg = argv[*i];
  if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
    print_help(c);
    return -1;
  }
  if (strncmp(arg, "--", 2) != 0 || !arg[2]) return bare_argument(a, arg);
  const char* flag = arg + 2;
  const cli_flag* own = find_own(c, flag);
  const cli_kind* kind = NULL;
  bioesp_option info;
  int negated = 0;
  if (!own && !find_flag(c, flag, &kind, &info, &negated)) {
    fprintf(stderr, "bioesp %s: unknown option %s (see bioesp %s --help)\n", c->name, arg, c->name);
    return 0;
  }
  const int takes_value = own ? own->value != NULL : info.type != BIOESP_OPTION_BOOL;
  const char* value = NULL;
  if (takes_value) {
    if (*i + 1 >= argc) {
      fprintf(stderr, "bioesp %s: %s needs a value\n", c->name, arg);
      return 0;
    }
    value = argv[++*i];
  }
  return own ? apply_own(c, own, value) : apply_option(a, kind, &info, negated, value);
}

cli_args* cli_parse(const cli_command* c, int argc, char** argv, int* exit_code) {
  cli_args* a = calloc(1, sizeof *a);
  *exit_code = 2;
  if (!a) return NULL;
  a->command = c;
  for (int i = 0; i < argc; ++i) {
    int r = parse_one(a, argc, argv, &i);
    if (r <= 0) {
      if (r < 0) *exit_code = 0;
      cli_free(a);
      return NULL;
    }
  }
  for (size_t i = 0; i < a->num_lists; ++i) {
    pending_list* l = &a->lists[i];
    if (bioesp_option_set_list(l->kind, l->options, l->name, l->items, l->count) != BIOESP_OK) {
      fprintf(stderr, "bioesp %s: %s\n", c->name, bioesp_last_error());
      cli_free(a);
      return NULL;
    }
  }
  return a;
}

/* ---- the command line back ---------------------------------------------------------------- */

static int push_arg(char*** args, int* n, const char* a) {
  char* copy = strdup(a);
  if (!copy || !grow((void**)args, (size_t)*n + 1, sizeof **args)) {
    free(copy);
    return 0;
  }
  (*args)[(*n)++] = copy;
  (*args)[*n] = NULL;
  return 1;
}

/* One field as its flag (and value); a field that is unset or not set by name adds nothing. */
static int push_field(char*** args, int* n, bioesp_options_kind kind, const void* options, const bioesp_option* o) {
  if (!o->flag || o->not_exposed) return 1;
  char* text = NULL;
  if (bioesp_option_get(kind, options, o->name, &text) != BIOESP_OK) return 0;
  char flag[128];
  int ok = 1;
  if (o->type == BIOESP_OPTION_BOOL) {
    snprintf(flag, sizeof flag, "--%s%s", strcmp(text, "true") == 0 || strcmp(text, "1") == 0 ? "" : "no-", o->flag);
    ok = push_arg(args, n, flag);
  } else if (o->type == BIOESP_OPTION_STRING_LIST || o->type == BIOESP_OPTION_UINT64_LIST || o->type == BIOESP_OPTION_IMAGE) {
    ok = !*text || strcmp(text, "[]") == 0;
    if (!ok) fprintf(stderr, "bioesp: --%s (a list or an image) cannot be passed on as arguments\n", o->flag);
  } else if (*text) {
    snprintf(flag, sizeof flag, "--%s", o->flag);
    ok = push_arg(args, n, flag) && push_arg(args, n, text);
  }
  bioesp_string_free(text);
  return ok;
}

char** cli_command_line(bioesp_options_kind kind, const void* options, int* count) {
  size_t fields = 0;
  char** args = calloc(1, sizeof *args);
  int n = 0;
  if (!args || bioesp_option_count(kind, &fields) != BIOESP_OK) {
    free(args);
    return NULL;
  }
  for (size_t i = 0; i < fields; ++i) {
    bioesp_option o = {0};
    o.struct_size = sizeof o;
    if (bioesp_option_at(kind, i, &o) != BIOESP_OK || !push_field(&args, &n, kind, options, &o)) {
      cli_command_line_free(args);
      return NULL;
    }
  }
  *count = n;
  return args;
}

void cli_command_line_free(char** args) {
  for (char** a = args; a && *a; ++a) free(*a);
  free(args);
}

/* ---- help --------------------------------------------------------------------------------- */

static const char* placeholder(const bioesp_option* o) {
  switch (o->type) {
    case BIOESP_OPTION_INT:
    case BIOESP_OPTION_UINT64:
    case BIOESP_OPTION_UINT64_LIST: return "N";
    case BIOESP_OPTION_FLOAT:
    case BIOESP_OPTION_DOUBLE: return "X";
    case BIOESP_OPTION_CHOICE: return o->choices;
    case BIOESP_OPTION_RGB: return "RRGGBB";
    case BIOESP_OPTION_IMAGE: return "FILE";
    default: return "TEXT";
  }
}

/* "1…1000", "≥ 0", "> 0, ≤ 1", or "" for numbers only their type bounds. */
static void range_text(const bioesp_option* o, char* out, size_t size) {
  const int lo = isfinite(o->min), hi = isfinite(o->max);
  out[0] = 0;
  if (lo && hi && !o->min_exclusive && !o->max_exclusive) snprintf(out, size, "%g…%g", o->min, o->max);
  else if (lo && hi) snprintf(out, size, "%s %g, %s %g", o->min_exclusive ? ">" : "≥", o->min, o->max_exclusive ? "<" : "≤", o->max);
  else if (lo) snprintf(out, size, "%s %g", o->min_exclusive ? ">" : "≥", o->min);
  else if (hi) snprintf(out, size, "%s %g", o->max_exclusive ? "<" : "≤", o->max);
}

/* The default the command line uses: the command's own word for it, else the init function's. */
static char* default_text(const cli_command* c, bioesp_options_kind kind, const bioesp_option* o) {
  for (const char* const* d = c->defaults; d && d[0]; d += 2)
    if (strcmp(d[0], o->name) == 0) return strdup(d[1]);
  void* fresh = NULL;
  char* text = NULL;
  if (bioesp_options_new(kind, &fresh) == BIOESP_OK) bioesp_option_get(kind, fresh, o->name, &text);
  bioesp_options_free(fresh);
  char* out = NULL;
  int empty = !text || !*text || strcmp(text, "false") == 0 || strcmp(text, "[]") == 0;
  if (!empty) out = strdup(strcmp(text, "true") == 0 ? "on" : text);
  bioesp_string_free(text);
  return out;
}

static void print_entry(FILE* out, const char* left, const char* help) {
  const int column = 30;
  int n = fprintf(out, "  %s", left);
  if (n > column - 2) {
    fprintf(out, "\n");
    n = 0;
  }
  fprintf(out, "%*s%s\n", column - n, "", help);
}

static void print_option(const cli_command* c, bioesp_options_kind kind, const bioesp_option* o) {
  char left[256], range[96], help[1024];
  const int list = o->type == BIOESP_OPTION_STRING_LIST || o->type == BIOESP_OPTION_UINT64_LIST;
  if (o->type == BIOESP_OPTION_BOOL) snprintf(left, sizeof left, "--[no-]%s", o->flag);
  else snprintf(left, sizeof left, "--%s %s%s", o->flag, placeholder(o), list ? " ..." : "");
  range_text(o, range, sizeof range);
  char* def = default_text(c, kind, o);
  snprintf(help, sizeof help, "%s%s%s%s%s%s%s", o->help, def || range[0] ? " (" : "", def ? "default " : "", def ? def : "",
           def && range[0] ? "; " : "", range, def || range[0] ? ")" : "");
  free(def);
  print_entry(stdout, left, help);
}

static void print_help(const cli_command* c) {
  printf("usage: bioesp %s %s\n\n%s\noptions:\n", c->name, c->synopsis, c->about);
  for (size_t i = 0; i < c->num_own; ++i) {
    const cli_flag* f = &c->own[i];
    char left[128];
    if (f->flag) snprintf(left, sizeof left, "--%s%s%s", f->flag, f->value ? " " : "", f->value ? f->value : "");
    else snprintf(left, sizeof left, "%s", f->value);
    print_entry(stdout, left, f->help);
  }
  for (size_t k = 0; k < c->num_kinds; ++k) {
    size_t n = 0;
    bioesp_option_count(c->kinds[k].kind, &n);
    for (size_t i = 0; i < n; ++i) {
      bioesp_option o = {0};
      o.struct_size = sizeof o;
      if (bioesp_option_at(c->kinds[k].kind, i, &o) == BIOESP_OK && o.flag) print_option(c, c->kinds[k].kind, &o);
    }
  }
  print_entry(stdout, "--help", "this help");
}

void cli_print_commands(FILE* out) {
  static const char* const commands[][2] = {
      {"inspect PATH", "list the tensors of a weight file or diffusers folder; compare with the architecture"},
      {"generate --prompt TEXT", "draw creatures with a Stable Diffusion model (the embedded one by default)"},
      {"animate --prompt A --prompt B", "morph between creatures: GIF, MP4, WebM or PNG frames"},
      {"fetch --campaign NAME", "download openly licensed images from Wikimedia Commons, with credits"},
      {"prepare IN_DIR --out DIR", "square, resize and caption images for training"},
      {"train --data DIR --out DIR", "fine-tune: DreamBooth-LoRA, or every UNet weight"},
      {"new-model --configs DIR", "a model folder to train from scratch"},
      {"evaluate --data DIR", "a model's held-out denoising loss and diffusion-classifier accuracy"},
      {"pull ORG/NAME", "download a model from the Hugging Face Hub into its cache"},
      {"push PATH --repo ORG/NAME", "publish a LoRA or training with a model card crediting its images"},
      {"studio", "the workshop studio in the browser"},
  };
  fprintf(out, "usage: bioesp <command> [options]; bioesp <command> --help lists its options\n\ncommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; ++i) print_entry(out, commands[i][0], commands[i][1]);
  fprintf(out, "\n");
  print_entry(out, "--version", "the library's version");
  print_entry(out, "--help", "this list");
}
