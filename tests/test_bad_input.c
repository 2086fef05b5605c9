/* Bad input through the C API: malformed safetensors, broken zip checkpoints and hostile
 * pickles are refused with a clear message, and nothing they ask for is ever executed; files
 * that ask for more than they hold stay within their budgets; hostile configs, LoRAs and
 * special files are refused by name; concurrent writers of one path never corrupt it. */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <jpeglib.h>

#include <bioesp.h>

#include "support/testutil.h"

static bioesp_status open_status(const char* path) {
  bioesp_weights* w = (bioesp_weights*)0x1;
  bioesp_status s = bioesp_weights_open(path, NULL, &w);
  if (s == BIOESP_OK) bioesp_weights_close(w);
  else assert_null(w);
  return s;
}

static void expect_refused(const char* path, bioesp_status want, const char* fragment) {
  bioesp_status s = open_status(path);
  if (s != want || !strstr(bioesp_last_error(), fragment))
    fail_msg("%s: status %d (%s), message '%s'; wanted %d and '%s'", path, s, bioesp_status_string(s),
             bioesp_last_error(), want, fragment);
}

static void safetensors_case(const char* name, const char* header, size_t data, const char* fragment) {
  size_t n;
  unsigned char* buf = make_safetensors(header, data, &n);
  const char* path = path_join(temp_dir(), name);
  write_file(path, buf, n);
  free(buf);
  expect_refused(path, BIOESP_ERR_FORMAT, fragment);
}

static void test_safetensors_truncated(void** state) {
  (void)state;
  const char* path = path_join(temp_dir(), "short.safetensors");
  write_file(path, "\x10\x00\x00", 3);
  expect_refused(path, BIOESP_ERR_FORMAT, "too short");
  /* A header length that runs past the end of the file. */
  size_t n;
  unsigned char* buf = make_safetensors("{}", 0, &n);
  buf[0] = 200;
  path = path_join(temp_dir(), "past-end.safetensors");
  write_file(path, buf, n);
  free(buf);
  expect_refused(path, BIOESP_ERR_FORMAT, "runs past the end");
}

static void test_safetensors_oversized_header(void** state) {
  (void)state;
  unsigned char buf[16] = {0, 0, 0, 0x40, 0, 0, 0, 0, '{', '}'}; /* 1 GiB header length */
  const char* path = path_join(temp_dir(), "huge-header.safetensors");
  write_file(path, buf, sizeof buf);
  expect_refused(path, BIOESP_ERR_FORMAT, "exceeds");
}

static void test_safetensors_offsets(void** state) {
  (void)state;
  safetensors_case("out-of-range.safetensors",
                   "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "outside");
  safetensors_case("overlap.safetensors",
                   "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                   12, "overlap");
  safetensors_case("reversed.safetensors",
                   "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8, "outside");
}

static void test_safetensors_length_mismatch(void** state) {
  (void)state;
  safetensors_case("mismatch.safetensors",
                   "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
                   "not its byte length");
  safetensors_case("f16-mismatch.safetensors",
                   "{\"a\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16,
                   "not its byte length");
  safetensors_case("negative.safetensors",
                   "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "not a size");
}

static void test_safetensors_malformed_json(void** state) {
  (void)state;
  safetensors_case("json.safetensors", "{\"a\": {\"dtype\": ", 0, "not valid JSON");
  safetensors_case("array.safetensors", "[1, 2]", 0, "not an object");
  safetensors_case("fields.safetensors", "{\"a\":{\"dtype\":\"F32\"}}", 0, "needs dtype, shape");
  safetensors_case("meta.safetensors", "{\"__metadata__\":{\"k\":1}}", 0, "not a string");
}

/* --- torch.save-shaped zip archives ------------------------------------------------------- */

/* Pickle opcodes with their length (they may hold NUL bytes). */
#define PKL(s) s, sizeof(s) - 1

/* {"w": tensor in float storage "0" of `numel` elements (an integer opcode), viewed with
 * `view` (size and stride tuples)} as protocol 2 emits it. */
static size_t storage_pickle(unsigned char* out, const char* numel, size_t numel_n, const char* view, size_t view_n) {
  static const char head[] =
      "\x80\x02}q\x00(X\x01\x00\x00\x00wq\x01"
      "ctorch._utils\n_rebuild_tensor_v2\nq\x02((X\x07\x00\x00\x00storageq\x03"
      "ctorch\nFloatStorage\nq\x04X\x01\x00\x00\x00" "0q\x05X\x03\x00\x00\x00" "cpuq\x06";
  static const char middle[] = "tq\x07QK\x00";
  static const char tail[] = "\x89" "ccollections\nOrderedDict\n)Rtq\x08Ru.";
  size_t n = 0;
  memcpy(out + n, head, sizeof head - 1); n += sizeof head - 1;
  memcpy(out + n, numel, numel_n); n += numel_n;
  memcpy(out + n, middle, sizeof middle - 1); n += sizeof middle - 1;
  memcpy(out + n, view, view_n); n += view_n;
  memcpy(out + n, tail, sizeof tail - 1); n += sizeof tail - 1;
  return n;
}

/* The same over the 4 floats that checkpoint() stores. */
static size_t tensor_pickle(unsigned char* out, const char* view, size_t view_n) {
  return storage_pickle(out, PKL("K\x04"), view, view_n);
}

static const char* checkpoint(const char* name, const void* pkl, size_t pkl_size, int with_storage) {
  static const float values[4] = {1.0f, 2.0f, 3.0f, 4.0f};
  zip_entry e[3] = {{"archive/data.pkl", pkl, pkl_size},
                    {"archive/version", "3\n", 2},
                    {"archive/data/0", values, sizeof values}};
  const char* path = path_join(temp_dir(), name);
  write_zip(path, e, with_storage ? 3 : 2);
  return path;
}

static void test_checkpoint_reads_views(void** state) {
  (void)state;
  unsigned char pkl[512];
  /* size (4,), stride (1,): contiguous */
  size_t n = tensor_pickle(pkl, PKL("K\x04\x85K\x01\x85"));
  bioesp_weights* w = NULL;
  assert_int_equal(bioesp_weights_open(checkpoint("flat.ckpt", pkl, n, 1), NULL, &w), BIOESP_OK);
  float got[4];
  assert_int_equal(bioesp_weights_read(w, 0, BIOESP_DTYPE_F32, got, sizeof got), BIOESP_OK);
  assert_true(got[0] == 1 && got[3] == 4);
  bioesp_weights_close(w);
  /* size (2, 2), stride (1, 2): a transposed view is materialised */
  n = tensor_pickle(pkl, PKL("K\x02K\x02\x86K\x01K\x02\x86"));
  assert_int_equal(bioesp_weights_open(checkpoint("transposed.ckpt", pkl, n, 1), NULL, &w), BIOESP_OK);
  assert_int_equal(bioesp_weights_read(w, 0, BIOESP_DTYPE_F32, got, sizeof got), BIOESP_OK);
  assert_true(got[0] == 1 && got[1] == 3 && got[2] == 2 && got[3] == 4);
  bioesp_weights_close(w);
  /* a view past the end of its storage */
  n = tensor_pickle(pkl, PKL("K\x08\x85K\x01\x85"));
  expect_refused(checkpoint("past-storage.ckpt", pkl, n, 1), BIOESP_ERR_FORMAT, "view reaches element");
}

static void test_checkpoint_missing_storage(void** state) {
  (void)state;
  unsigned char pkl[512];
  size_t n = tensor_pickle(pkl, PKL("K\x04\x85K\x01\x85"));
  expect_refused(checkpoint("no-storage.ckpt", pkl, n, 0), BIOESP_ERR_FORMAT,
                 "storage record data/0 is missing");
}

static void test_checkpoint_not_a_zip(void** state) {
  (void)state;
  const char* path = path_join(temp_dir(), "garbage.ckpt");
  write_file(path, "PK\x03\x04garbage", 11);
  expect_refused(path, BIOESP_ERR_FORMAT, "not a readable PyTorch zip checkpoint");
  zip_entry e[1] = {{"archive/version", "3\n", 2}};
  path = path_join(temp_dir(), "no-pickle.ckpt");
  write_zip(path, e, 1);
  expect_refused(path, BIOESP_ERR_FORMAT, "no data.pkl");
}

/* Each payload would create the marker file if it were ever executed. */
static void hostile(const char* name, const char* pkl, size_t n, const char* global) {
  const char* marker = path_join(temp_dir(), "PWNED");
  const char* path = checkpoint(name, pkl, n, 1);
  expect_refused(path, BIOESP_ERR_FORMAT, global);
  assert_non_null(strstr(bioesp_last_error(), "refused to load global"));
  assert_false(file_exists(marker));
}

static void test_malicious_pickles(void** state) {
  (void)state;
  char touch[600], pkl[1024];
  int len = snprintf(touch, sizeof touch, "touch %s", path_join(temp_dir(), "PWNED"));
  /* os.system("touch …") */
  size_t n = 0;
  n += (size_t)snprintf(pkl, sizeof pkl, "\x80\x02" "cos\nsystem\nX");
  pkl[n++] = (char)len; pkl[n++] = 0; pkl[n++] = 0; pkl[n++] = 0;
  memcpy(pkl + n, touch, (size_t)len); n += (size_t)len;
  memcpy(pkl + n, "\x85R.", 3); n += 3;
  hostile("os-system.ckpt", pkl, n, "'os.system'");
  /* builtins.eval("__import__('os').system('touch …')") */
  char code[700];
  int clen = snprintf(code, sizeof code, "__import__('os').system('%s')", touch);
  n = (size_t)snprintf(pkl, sizeof pkl, "\x80\x02" "cbuiltins\neval\nX");
  pkl[n++] = (char)clen; pkl[n++] = 0; pkl[n++] = 0; pkl[n++] = 0;
  memcpy(pkl + n, code, (size_t)clen); n += (size_t)clen;
  memcpy(pkl + n, "\x85R.", 3); n += 3;
  hostile("eval.ckpt", pkl, n, "'builtins.eval'");
  /* subprocess.Popen(["touch", …]) */
  n = (size_t)snprintf(pkl, sizeof pkl, "\x80\x02" "csubprocess\nPopen\n(X\x05\x00\x00\x00touchX");
  const char* marker = path_join(temp_dir(), "PWNED");
  int mlen = (int)strlen(marker);
  pkl[n++] = (char)mlen; pkl[n++] = 0; pkl[n++] = 0; pkl[n++] = 0;
  memcpy(pkl + n, marker, (size_t)mlen); n += (size_t)mlen;
  memcpy(pkl + n, "l\x85R.", 4); n += 4;
  hostile("popen.ckpt", pkl, n, "'subprocess.Popen'");
  /* nested REDUCE: OrderedDict(getattr(__import__("os"), "system")(…)) */
  hostile("nested.ckpt",
          PKL("\x80\x02" "ccollections\nOrderedDict\n(c__builtin__\ngetattr\n(c__builtin__\n__import__\n"
              "(X\x02\x00\x00\x00ostRX\x06\x00\x00\x00systemtR(X\x04\x00\x00\x00trueTtRtR."),
          "'__builtin__.getattr'");
  /* protocol 4 STACK_GLOBAL spelling of os.system */
  hostile("stack-global.ckpt", PKL("\x80\x04\x8c\x02os\x8c\x06system\x93X\x04\x00\x00\x00true\x85R."),
          "'os.system'");
  /* an allowed callable called with a hostile argument is refused at the argument's global */
  hostile("reduce-arg.ckpt",
          PKL("\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n(cposix\nsystem\nX\x04\x00\x00\x00true\x85RtR."),
          "'posix.system'");
}

static void test_pickle_malformed(void** state) {
  (void)state;
  expect_refused(checkpoint("truncated.ckpt", PKL("\x80\x02}q\x00(X\xff\x00\x00\x00ab"), 1),
                 BIOESP_ERR_FORMAT, "truncated");
  expect_refused(checkpoint("bad-opcode.ckpt", PKL("\x80\x02}\xff."), 1), BIOESP_ERR_FORMAT,
                 "opcode 0xff");
  expect_refused(checkpoint("build.ckpt", PKL("\x80\x02}}X\x01\x00\x00\x00xK\x01sb."), 1),
                 BIOESP_ERR_FORMAT, "BUILD with state");
  expect_refused(checkpoint("list-root.ckpt", PKL("\x80\x02]."), 1), BIOESP_ERR_FORMAT,
                 "not a dict of tensors");
  expect_refused(checkpoint("underflow.ckpt", PKL("\x80\x02R."), 1), BIOESP_ERR_FORMAT, "underflow");
  expect_refused(checkpoint("memo.ckpt", PKL("\x80\x02h\x05."), 1), BIOESP_ERR_FORMAT, "memo key 5");
}

static void test_missing_files(void** state) {
  (void)state;
  expect_refused(path_join(temp_dir(), "does-not-exist.safetensors"), BIOESP_ERR_IO, "no such file");
  const char* dir = path_join(temp_dir(), "empty-model");
  char cmd[512];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
  assert_int_equal(system(cmd), 0);
  expect_refused(dir, BIOESP_ERR_NOT_FOUND, "no weights file");
}

/* --- views, budgets and containers that ask for more than the file holds ---------------------- */

static void test_checkpoint_strides_overflow(void** state) {
  (void)state;
  unsigned char pkl[512];
  /* (2^62,) with stride (0,): numel × 4 bytes wraps to 0 */
  size_t n = tensor_pickle(pkl, PKL("\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x40\x85K\x00\x85"));
  expect_refused(checkpoint("stride0-2e62.ckpt", pkl, n, 1), BIOESP_ERR_FORMAT, "sizes overflow");
  /* (2^31, 2^31) with strides (0, 0) */
  n = tensor_pickle(pkl, PKL("\x8a\x05\x00\x00\x00\x80\x00\x8a\x05\x00\x00\x00\x80\x00\x86K\x00K\x00\x86"));
  expect_refused(checkpoint("stride0-2e31.ckpt", pkl, n, 1), BIOESP_ERR_FORMAT, "sizes overflow");
  /* (1000000,) with stride (0,): 4 MB out of a 16-byte storage */
  n = tensor_pickle(pkl, PKL("J\x40\x42\x0f\x00\x85K\x00\x85"));
  expect_refused(checkpoint("stride0-expand.ckpt", pkl, n, 1), BIOESP_ERR_FORMAT, "may not expand its storage");
  /* a zero-size dimension does not hide an overflowing product of the others */
  n = tensor_pickle(pkl, PKL("K\x00\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x40\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x40\x87"
                             "K\x00K\x00K\x00\x87"));
  expect_refused(checkpoint("zero-dim.ckpt", pkl, n, 1), BIOESP_ERR_FORMAT, "overflow");
}

/* A storage record deflated from megabytes of zeros, and a data.pkl of MARK opcodes alike. */
static void test_checkpoint_zip_bombs(void** state) {
  (void)state;
  const size_t numel = 4u << 20;
  float* zeros = calloc(numel, sizeof *zeros);
  unsigned char pkl[512];
  size_t n = storage_pickle(pkl, PKL("J\x00\x00\x40\x00"), PKL("J\x00\x00\x40\x00\x85K\x01\x85"));
  zip_entry e[3] = {{"archive/data.pkl", pkl, n, 0}, {"archive/version", "3\n", 2, 0},
                    {"archive/data/0", zeros, numel * sizeof *zeros, 1}};
  const char* path = path_join(temp_dir(), "deflate-bomb.ckpt");
  write_zip(path, e, 3);
  expect_refused(path, BIOESP_ERR_FORMAT, "times its size");
  free(zeros);
  size_t marks_n = 8u << 20;
  char* marks = malloc(marks_n);
  memset(marks, '(', marks_n);
  zip_entry m[2] = {{"archive/data.pkl", marks, marks_n, 1}, {"archive/version", "3\n", 2, 0}};
  path = path_join(temp_dir(), "mark-bomb.ckpt");
  write_zip(path, m, 2);
  expect_refused(path, BIOESP_ERR_FORMAT, "times its size");
  /* stored, the same opcodes stop at the reference limit */
  m[0].deflate = 0;
  m[0].size = 17u << 20;
  marks = realloc(marks, m[0].size);
  memset(marks, '(', m[0].size);
  m[0].data = marks;
  path = path_join(temp_dir(), "marks.ckpt");
  write_zip(path, m, 2);
  expect_refused(path, BIOESP_ERR_FORMAT, "references");
  free(marks);
}

/* {"a": [None] * (2,000,001)}: a valid pickle with more objects than any checkpoint holds. */
static void test_pickle_object_budget(void** state) {
  (void)state;
  const char head[] = "\x80\x02}q\x00X\x01\x00\x00\x00" "a(";
  const size_t nones = 2000001;
  size_t n = sizeof head - 1 + nones + 3;
  char* pkl = malloc(n);
  memcpy(pkl, head, sizeof head - 1);
  memset(pkl + sizeof head - 1, 'N', nones);
  memcpy(pkl + n - 3, "ls.", 3);
  expect_refused(checkpoint("objects.ckpt", pkl, n, 1), BIOESP_ERR_FORMAT, "more than 2000000 objects");
  free(pkl);
}

static void test_safetensors_duplicates_and_nul(void** state) {
  (void)state;
  safetensors_case("duplicate.safetensors",
                   "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                   "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                   8, "names 'a' twice");
  safetensors_case("nul.safetensors", "{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                   "NUL byte");
}

/* A weights file cut short while its handle is open: reads fail with an I/O error (a mapping
 * would deliver SIGBUS). */
static void test_truncated_while_open(void** state) {
  (void)state;
  size_t n;
  unsigned char* buf = make_safetensors("{\"big\":{\"dtype\":\"F32\",\"shape\":[1048576],\"data_offsets\":[0,4194304]}}",
                                        4194304, &n);
  const char* path = path_join(temp_dir(), "shrinks.safetensors");
  write_file(path, buf, n);
  free(buf);
  bioesp_weights* w = NULL;
  assert_int_equal(bioesp_weights_open(path, NULL, &w), BIOESP_OK);
  assert_int_equal(truncate(path, 100), 0);
  float* out = malloc(4194304);
  assert_int_equal(bioesp_weights_read(w, 0, BIOESP_DTYPE_F32, out, 4194304), BIOESP_ERR_IO);
  assert_non_null(strstr(bioesp_last_error(), "truncated"));
  free(out);
  bioesp_weights_close(w);
}

/* Opening a FIFO would wait for a writer forever: it is refused (the alarm fails the test
 * instead of hanging it). */
static void test_non_regular_files(void** state) {
  (void)state;
  const char* fifo = path_join(temp_dir(), "weights.safetensors");
  assert_int_equal(mkfifo(fifo, 0600), 0);
  alarm(60);
  expect_refused(fifo, BIOESP_ERR_IO, "not a regular file but a FIFO");
  bioesp_images* img = NULL;
  assert_int_equal(bioesp_images_load(fifo, &img), BIOESP_ERR_IO);
  assert_non_null(strstr(bioesp_last_error(), "FIFO"));
  /* a component folder whose weights file is a FIFO */
  const char* dir = path_join(temp_dir(), "fifo-component");
  assert_int_equal(mkdir(dir, 0755), 0);
  assert_int_equal(mkfifo(path_join(dir, "diffusion_pytorch_model.safetensors"), 0600), 0);
  expect_refused(dir, BIOESP_ERR_IO, "not a regular file but a FIFO");
  alarm(0);
}

/* --- model folders with hostile configs ------------------------------------------------------- */

/* A copy of the tiny model (files linked, not copied) in which `file` is rewritten by `python`,
 * a statement over the parsed JSON `c`. */
static const char* model_with(const char* name, const char* file, const char* python) {
  const char* dir = path_join(temp_dir(), name);
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "cp -rs '%s/models/tiny-sd1' '%s' && cd '%s' && python3 -c \"import json; p='%s'; c=json.load(open(p)); %s; "
           "import os; os.remove(p); json.dump(c, open(p, 'w'))\"",
           ref_dir(), dir, dir, file, python);
  assert_int_equal(system(cmd), 0);
  return dir;
}

static void expect_model_refused(const char* dir, bioesp_status want, const char* fragment) {
  bioesp_model* m = NULL;
  bioesp_status s = bioesp_model_load(dir, NULL, &m);
  if (s == BIOESP_OK) bioesp_model_free(m);
  if (s != want || !strstr(bioesp_last_error(), fragment))
    fail_msg("%s: status %d (%s), message '%s'; wanted %d and '%s'", dir, s, bioesp_status_string(s), bioesp_last_error(),
             want, fragment);
}

static void test_config_values(void** state) {
  (void)state;
  expect_model_refused(model_with("layers", "text_encoder/config.json", "c['num_hidden_layers'] = 1073741824"),
                       BIOESP_ERR_FORMAT, "'num_hidden_layers' must be an integer from 1 to 256");
  expect_model_refused(model_with("norm-eps", "unet/config.json", "c['norm_eps'] = -1"), BIOESP_ERR_FORMAT,
                       "'norm_eps' must be a number above 0");
  expect_model_refused(model_with("scaling", "vae/config.json", "c['scaling_factor'] = 0"), BIOESP_ERR_FORMAT,
                       "'scaling_factor' must be a number above 0");
  expect_model_refused(model_with("shift", "vae/config.json", "c['shift_factor'] = 0.1159"), BIOESP_ERR_UNSUPPORTED,
                       "'shift_factor' = 0.1159 is not supported");
  /* A UNet with SDXL's added conditions in a folder without SDXL's second text encoder. */
  expect_model_refused(model_with("xl-unet", "unet/config.json", "c['addition_embed_type'] = 'text_time'"),
                       BIOESP_ERR_NOT_FOUND, "text_encoder_2/ is missing");
  expect_model_refused(model_with("beta-neg", "scheduler/scheduler_config.json", "c['beta_start'] = -0.001"),
                       BIOESP_ERR_FORMAT, "beta_start");
  expect_model_refused(model_with("beta-big", "scheduler/scheduler_config.json", "c['beta_end'] = 1.5"),
                       BIOESP_ERR_FORMAT, "beta_end");
  expect_model_refused(model_with("ids", "text_encoder/config.json", "c['eos_token_id'] = 60000"), BIOESP_ERR_FORMAT,
                       "'eos_token_id' must be an integer from 0 to 49407");
  /* within every key's range, but 8.6 billion parameters */
  expect_model_refused(model_with("huge", "text_encoder/config.json",
                                  "c.update(vocab_size=1048576, hidden_size=8192, num_attention_heads=64)"),
                       BIOESP_ERR_UNSUPPORTED, "parameters, more than");
}

/* A tokenizer whose ids or prompts do not fit the text encoder: refused at load, not at the
 * first prompt as "index out of range in self". */
static void test_tokenizer_fits_text_encoder(void** state) {
  (void)state;
  expect_model_refused(model_with("vocab", "tokenizer/vocab.json", "c['zzzz</w>'] = 49408"), BIOESP_ERR_MISMATCH,
                       "the text encoder's vocab_size is 49408");
  expect_model_refused(model_with("positions", "tokenizer/tokenizer_config.json", "c['model_max_length'] = 100"),
                       BIOESP_ERR_MISMATCH, "77 positions");
}

static void test_config_fifo(void** state) {
  (void)state;
  const char* dir = model_with("fifo-config", "unet/config.json", "pass");
  const char* cfg = path_join(dir, "unet/config.json");
  assert_int_equal(unlink(cfg), 0);
  assert_int_equal(mkfifo(cfg, 0600), 0);
  alarm(60);
  expect_model_refused(dir, BIOESP_ERR_IO, "not a regular file but a FIFO");
  alarm(0);
}

/* model_index.json naming "../../outside" would load weights from outside the model folder. */
static void test_component_paths_confined(void** state) {
  (void)state;
  char cmd[2048];
  const char* outside = path_join(temp_dir(), "outside");
  const char* model = path_join(temp_dir(), "confined/model");
  snprintf(cmd, sizeof cmd, "mkdir -p '%s' '%s' && cp -s '%s/models/tiny-sd1/unet/'* '%s/'", outside, model, ref_dir(), outside);
  assert_int_equal(system(cmd), 0);
  const char* index = "{\"_class_name\": \"StableDiffusionPipeline\", \"../../outside\": [\"diffusers\", \"UNet2DConditionModel\"]}";
  write_file(path_join(model, "model_index.json"), index, strlen(index));
  expect_refused(model, BIOESP_ERR_FORMAT, "components cannot be paths");
}

/* --- single files whose shapes break the inference ------------------------------------------- */

static void test_single_file_shapes(void** state) {
  (void)state;
  bioesp_weights_options o;
  bioesp_weights_options_init(&o);
  o.to_diffusers = 1;
  bioesp_weights* w = NULL;
  /* a block index beyond any integer: ignored, not "internal error: stoi" */
  const char* path = path_join(temp_dir(), "index.safetensors");
  size_t n;
  unsigned char* buf = make_safetensors(
      "{\"model.diffusion_model.input_blocks.99999999999.0.op.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, &n);
  write_file(path, buf, n);
  free(buf);
  if (bioesp_weights_open(path, &o, &w) != BIOESP_OK) fail_msg("%s", bioesp_last_error());
  bioesp_weights_close(w);
  /* a scalar where a convolution weight belongs, and a 1-D one */
  static const char* const headers[] = {
      "{\"model.diffusion_model.input_blocks.1.0.in_layers.2.weight\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}",
      "{\"model.diffusion_model.input_blocks.1.0.in_layers.2.weight\":{\"dtype\":\"F32\",\"shape\":[4,4,3,3],\"data_offsets\":[0,576]},"
      "\"model.diffusion_model.input_blocks.0.0.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[576,592]}}"};
  static const char* const want[] = {"has 0 dimensions, not 4", "conv_in.weight has 1 dimensions, not 4"};
  for (int i = 0; i < 2; ++i) {
    buf = make_safetensors(headers[i], 592, &n);
    path = path_join(temp_dir(), i ? "vector-conv.safetensors" : "scalar-conv.safetensors");
    write_file(path, buf, n);
    free(buf);
    bioesp_status s = bioesp_weights_open_expected(path, NULL, &w);
    if (s == BIOESP_OK) bioesp_weights_close(w);
    if (s != BIOESP_ERR_FORMAT || !strstr(bioesp_last_error(), want[i]))
      fail_msg("%s: status %d, message '%s'", path, s, bioesp_last_error());
  }
}

/* --- pictures that claim more pixels than they hold ------------------------------------------ */

static void expect_image_refused(const char* path, bioesp_status want, const char* fragment) {
  bioesp_images* set = NULL;
  bioesp_status s = bioesp_images_load(path, &set);
  if (s == BIOESP_OK) bioesp_images_free(set);
  if (s != want || !strstr(bioesp_last_error(), fragment))
    fail_msg("%s: status %d, message '%s'; wanted %d and '%s'", path, s, bioesp_last_error(), want, fragment);
}

/* A 16×16 JPEG whose frame header (SOF) is made to claim `w`×`h`. */
static const char* jpeg_claiming(const char* name, unsigned w, unsigned h, int progressive) {
  const char* path = path_join(temp_dir(), name);
  const uint8_t grey[3] = {128, 128, 128};
  write_test_jpeg(path, JCS_RGB, 3, grey, progressive);
  FILE* f = fopen(path, "r+b");
  unsigned char buf[8192];
  size_t n = fread(buf, 1, sizeof buf, f);
  for (size_t i = 0; i + 9 < n; ++i)
    if (buf[i] == 0xFF && (buf[i + 1] == 0xC0 || buf[i + 1] == 0xC2)) {
      buf[i + 5] = (unsigned char)(h >> 8), buf[i + 6] = (unsigned char)h;
      buf[i + 7] = (unsigned char)(w >> 8), buf[i + 8] = (unsigned char)w;
      break;
    }
  fseek(f, 0, SEEK_SET);
  fwrite(buf, 1, n, f);
  fclose(f);
  return path;
}

static void test_image_pixel_budget(void** state) {
  (void)state;
  /* An 11584² PNG (a 390 KB file of zeros decodes to 400 MB): only its first rows are written,
   * as the header is refused before any of them is read. */
  uint8_t* rows = calloc(4, 11584 * 3);
  const char* png = path_join(temp_dir(), "huge.png");
  write_test_png(png, 11584, 11584, rows, 4);
  free(rows);
  expect_image_refused(png, BIOESP_ERR_UNSUPPORTED, "more than the 67108864 (8192×8192) decoded");
  expect_image_refused(jpeg_claiming("huge.jpg", 11000, 11000, 0), BIOESP_ERR_UNSUPPORTED, "11000×11000 pixels, more than");
}

/* prepare decodes a larger baseline JPEG at a smaller DCT scale: a file of a few hundred bytes
 * claiming 11000² costs a quarter of its pixels (progressive ones are refused), in a child whose
 * peak memory is measured. */
static void test_prepare_reduces_large_jpegs(void** state) {
  (void)state;
  char in[512];
  snprintf(in, sizeof in, "%s", path_join(temp_dir(), "big-pictures"));
  assert_int_equal(mkdir(in, 0755), 0);
  char name[512];
  snprintf(name, sizeof name, "big-pictures/a.jpg");
  jpeg_claiming(name, 11000, 11000, 0);
  snprintf(name, sizeof name, "big-pictures/b.jpg");
  jpeg_claiming(name, 11000, 11000, 1);
  const uint8_t grey[3] = {128, 128, 128};
  write_test_jpeg(path_join(in, "c.jpg"), JCS_RGB, 3, grey, 0);
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t child = fork();
  if (child == 0) {
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    bioesp_prepare_options o;
    bioesp_prepare_options_init(&o);
    o.in = in;
    o.out = path_join(temp_dir(), "big-prepared");
    o.size = 64;
    size_t prepared = 0, skipped = 0;
    bioesp_status s = bioesp_prepare(&o, &prepared, &skipped);
    getrusage(RUSAGE_SELF, &after);
    long report[3] = {s, (long)skipped, after.ru_maxrss - before.ru_maxrss};
    if (write(fds[1], report, sizeof report) != sizeof report) _exit(2);
    _exit(0);
  }
  long report[3] = {0, 0, 0};
  assert_int_equal(read(fds[0], report, sizeof report), (ssize_t)sizeof report);
  int status;
  waitpid(child, &status, 0);
  close(fds[0]);
  close(fds[1]);
  /* both end long before their last row: skipped, the baseline one after a 5500² decode (90 MB),
   * the progressive one before any; the small picture is prepared */
  assert_int_equal(report[0], BIOESP_OK);
  assert_int_equal(report[1], 2);
  if (report[2] > 200 * 1024) fail_msg("prepare took %ld MB more", report[2] / 1024);
}

/* --- writers of one path ---------------------------------------------------------------------- */

enum { kWriters = 8, kRounds = 300 };
static bioesp_images* writer_images[kWriters];
static pthread_barrier_t round_start, round_end;
static const char* shared_path;
static int writer_failures;

static void* writer(void* arg) {
  size_t k = (size_t)arg;
  for (int r = 0; r < kRounds; ++r) {
    pthread_barrier_wait(&round_start);
    if (bioesp_images_save(writer_images[k], 0, shared_path, NULL) != BIOESP_OK) {
      fprintf(stderr, "save: %s\n", bioesp_last_error());
      __atomic_add_fetch(&writer_failures, 1, __ATOMIC_SEQ_CST);
    }
    pthread_barrier_wait(&round_end);
  }
  return NULL;
}

/* Which writer's picture the file holds, or -1 when it is none of them (a corrupt file). */
static int whose_picture(const char* path) {
  bioesp_images* got = NULL;
  if (bioesp_images_load(path, &got) != BIOESP_OK) return -1;
  bioesp_image a = {sizeof a};
  bioesp_images_get(got, 0, &a);
  int who = -1;
  for (int k = 0; k < kWriters && who < 0; ++k) {
    bioesp_image b = {sizeof b};
    bioesp_images_get(writer_images[k], 0, &b);
    if (a.width == b.width && a.height == b.height && memcmp(a.pixels, b.pixels, (size_t)a.width * a.height * 3) == 0) who = k;
  }
  bioesp_images_free(got);
  return who;
}

/* 8 threads save their own picture to one path, 300 times: after every round the file is one
 * of the pictures whole, and no temporary is left behind. */
static void test_concurrent_saves(void** state) {
  (void)state;
  char* dir = strdup(path_join(temp_dir(), "writers"));
  assert_int_equal(mkdir(dir, 0755), 0);
  uint8_t* pixels = malloc(128 * 128 * 3);
  for (int k = 0; k < kWriters; ++k) {
    for (int i = 0; i < 128 * 128 * 3; ++i) pixels[i] = (uint8_t)((i * (k + 3)) ^ (i >> 7) * 31);
    char name[64];
    snprintf(name, sizeof name, "writers/source-%d.png", k);
    const char* src = path_join(temp_dir(), name);
    write_test_png(src, 128, 128, pixels, 128);
    assert_int_equal(bioesp_images_load(src, &writer_images[k]), BIOESP_OK);
    assert_int_equal(unlink(src), 0);
  }
  free(pixels);
  shared_path = strdup(path_join(dir, "creature.png"));
  pthread_barrier_init(&round_start, NULL, kWriters + 1);
  pthread_barrier_init(&round_end, NULL, kWriters + 1);
  pthread_t t[kWriters];
  for (size_t k = 0; k < kWriters; ++k) pthread_create(&t[k], NULL, writer, (void*)k);
  int corrupt = 0;
  for (int r = 0; r < kRounds; ++r) {
    pthread_barrier_wait(&round_start);
    pthread_barrier_wait(&round_end);
    if (whose_picture(shared_path) < 0) ++corrupt;
  }
  for (int k = 0; k < kWriters; ++k) pthread_join(t[k], NULL);
  assert_int_equal(writer_failures, 0);
  if (corrupt) fail_msg("%d of %d rounds left a corrupt file", corrupt, kRounds);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "test \"$(ls '%s')\" = creature.png", dir);
  if (system(cmd) != 0) fail_msg("temporaries left in %s", dir);
  for (int k = 0; k < kWriters; ++k) bioesp_images_free(writer_images[k]);
  free((void*)shared_path);
  free(dir);
}

/* --- LoRA values that would draw black images ------------------------------------------------- */

/* The tiny model's diffusers LoRA rewritten with its first matrix poisoned: NaN, 3e38, or
 * int32 values. */
enum poison { kNaN, kHuge, kInteger };
static const char* poisoned_lora(const char* name, enum poison kind) {
  bioesp_weights* w = NULL;
  assert_int_equal(bioesp_weights_open(path_join(ref_dir(), "golden/tiny-sd1/lora/pytorch_lora_weights.safetensors"), NULL, &w),
                   BIOESP_OK);
  size_t count = 0;
  bioesp_weights_count(w, &count);
  size_t header_cap = 256 * count + 64, data_n = 0;
  char* header = malloc(header_cap);
  size_t h = (size_t)snprintf(header, header_cap, "{");
  float** values = calloc(count, sizeof *values);
  size_t* sizes = calloc(count, sizeof *sizes);
  for (size_t i = 0; i < count; ++i) {
    bioesp_tensor_info t = {sizeof t};
    assert_int_equal(bioesp_weights_tensor(w, i, &t), BIOESP_OK);
    size_t numel = 1;
    for (size_t d = 0; d < t.ndim; ++d) numel *= (size_t)t.shape[d];
    sizes[i] = numel * 4;
    values[i] = malloc(sizes[i]);
    assert_int_equal(bioesp_weights_read(w, i, BIOESP_DTYPE_F32, values[i], sizes[i]), BIOESP_OK);
    const char* dtype = "F32";
    if (i == 0 && kind == kInteger) {
      dtype = "I32";
      memset(values[i], 0, sizes[i]);
    }
    if (i == 0 && kind != kInteger) values[i][numel / 2] = kind == kNaN ? NAN : 3e38f;
    h += (size_t)snprintf(header + h, header_cap - h, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],\"data_offsets\":[%zu,%zu]}",
                          i ? "," : "", t.name, dtype, (long long)t.shape[0], (long long)t.shape[1], data_n, data_n + sizes[i]);
    data_n += sizes[i];
  }
  snprintf(header + h, header_cap - h, "}");
  bioesp_weights_close(w);
  size_t n;
  unsigned char* buf = make_safetensors(header, data_n, &n);
  size_t at = n - data_n;
  for (size_t i = 0; i < count; ++i) {
    memcpy(buf + at, values[i], sizes[i]);
    at += sizes[i];
    free(values[i]);
  }
  const char* path = path_join(temp_dir(), name);
  write_file(path, buf, n);
  free(buf);
  free(values);
  free(sizes);
  free(header);
  return path;
}

static void test_lora_values(void** state) {
  (void)state;
  bioesp_model* m = NULL;
  assert_int_equal(bioesp_model_load(path_join(ref_dir(), "models/tiny-sd1"), NULL, &m), BIOESP_OK);
  static const char* const want[] = {"NaN or infinite", "beyond the ±65504 of float16", "must be floating point, not I32"};
  static const char* const names[] = {"nan.safetensors", "huge.safetensors", "int.safetensors"};
  for (int k = kNaN; k <= kInteger; ++k) {
    bioesp_status s = bioesp_model_add_lora(m, poisoned_lora(names[k], (enum poison)k), 1.0f, "x");
    if (s != BIOESP_ERR_FORMAT || !strstr(bioesp_last_error(), want[k]))
      fail_msg("%s: status %d, message '%s'", names[k], s, bioesp_last_error());
  }
  /* the unpoisoned file still attaches */
  assert_int_equal(bioesp_model_add_lora(m, path_join(ref_dir(), "golden/tiny-sd1/lora/pytorch_lora_weights.safetensors"), 1.0f, "x"),
                   BIOESP_OK);
  bioesp_model_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_safetensors_truncated),
      cmocka_unit_test(test_safetensors_oversized_header),
      cmocka_unit_test(test_safetensors_offsets),
      cmocka_unit_test(test_safetensors_length_mismatch),
      cmocka_unit_test(test_safetensors_malformed_json),
      cmocka_unit_test(test_checkpoint_reads_views),
      cmocka_unit_test(test_checkpoint_missing_storage),
      cmocka_unit_test(test_checkpoint_not_a_zip),
      cmocka_unit_test(test_malicious_pickles),
      cmocka_unit_test(test_pickle_malformed),
      cmocka_unit_test(test_missing_files),
      cmocka_unit_test(test_prepare_reduces_large_jpegs),
      cmocka_unit_test(test_checkpoint_strides_overflow),
      cmocka_unit_test(test_checkpoint_zip_bombs),
      cmocka_unit_test(test_pickle_object_budget),
      cmocka_unit_test(test_safetensors_duplicates_and_nul),
      cmocka_unit_test(test_truncated_while_open),
      cmocka_unit_test(test_non_regular_files),
      cmocka_unit_test(test_image_pixel_budget),
      cmocka_unit_test(test_single_file_shapes),
      cmocka_unit_test(test_component_paths_confined),
      cmocka_unit_test(test_config_values),
      cmocka_unit_test(test_tokenizer_fits_text_encoder),
      cmocka_unit_test(test_config_fifo),
      cmocka_unit_test(test_lora_values),
      cmocka_unit_test(test_concurrent_saves),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
