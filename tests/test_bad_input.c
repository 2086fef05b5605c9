/* Bad input through the C API: malformed safetensors, broken zip checkpoints and hostile
 * pickles are refused with a clear message, and nothing they ask for is ever executed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

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

/* {"w": tensor of 4 floats in storage "0", viewed with `size`/`stride`} as protocol 2 emits it. */
static size_t tensor_pickle(unsigned char* out, const char* view) {
  static const char head[] =
      "\x80\x02}q\x00(X\x01\x00\x00\x00wq\x01"
      "ctorch._utils\n_rebuild_tensor_v2\nq\x02((X\x07\x00\x00\x00storageq\x03"
      "ctorch\nFloatStorage\nq\x04X\x01\x00\x00\x00" "0q\x05X\x03\x00\x00\x00" "cpuq\x06K\x04tq\x07QK\x00";
  static const char tail[] = "\x89" "ccollections\nOrderedDict\n)Rtq\x08Ru.";
  size_t n = 0;
  memcpy(out + n, head, sizeof head - 1); n += sizeof head - 1;
  memcpy(out + n, view, strlen(view)); n += strlen(view);
  memcpy(out + n, tail, sizeof tail - 1); n += sizeof tail - 1;
  return n;
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
  size_t n = tensor_pickle(pkl, "K\x04\x85K\x01\x85");
  bioesp_weights* w = NULL;
  assert_int_equal(bioesp_weights_open(checkpoint("flat.ckpt", pkl, n, 1), NULL, &w), BIOESP_OK);
  float got[4];
  assert_int_equal(bioesp_weights_read(w, 0, BIOESP_DTYPE_F32, got, sizeof got), BIOESP_OK);
  assert_true(got[0] == 1 && got[3] == 4);
  bioesp_weights_close(w);
  /* size (2, 2), stride (1, 2): a transposed view is materialised */
  n = tensor_pickle(pkl, "K\x02K\x02\x86K\x01K\x02\x86");
  assert_int_equal(bioesp_weights_open(checkpoint("transposed.ckpt", pkl, n, 1), NULL, &w), BIOESP_OK);
  assert_int_equal(bioesp_weights_read(w, 0, BIOESP_DTYPE_F32, got, sizeof got), BIOESP_OK);
  assert_true(got[0] == 1 && got[1] == 3 && got[2] == 2 && got[3] == 4);
  bioesp_weights_close(w);
  /* a view past the end of its storage */
  n = tensor_pickle(pkl, "K\x08\x85K\x01\x85");
  expect_refused(checkpoint("past-storage.ckpt", pkl, n, 1), BIOESP_ERR_FORMAT, "view reaches element");
}

static void test_checkpoint_missing_storage(void** state) {
  (void)state;
  unsigned char pkl[512];
  size_t n = tensor_pickle(pkl, "K\x04\x85K\x01\x85");
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

#define PKL(s) s, sizeof(s) - 1
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
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
