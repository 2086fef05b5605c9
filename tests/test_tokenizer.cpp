// The CLIP tokenizer against transformers' ids for the golden prompts (Spanish accents, HTML
// entities, emoji, empty, over-long), plus NFC, special tokens and broken tokenizer folders.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/file.h"
#include "text/bpe_builder.h"
#include "text/clip_tokenizer.h"
#include "text/unicode.h"
extern "C" {
#include "support/testutil.h"
}

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
extern "C" {
#include <cmocka.h>
}

using nlohmann::json;
using bioesp::text::ClipTokenizer;

static std::string tokenizer_dir() { return path_join(ref_dir(), "models/tiny-sd1/tokenizer"); }

static void test_golden_prompts(void** state) {
  (void)state;
  ClipTokenizer tok(tokenizer_dir());
  json golden = json::parse(bioesp::io::read_text_file(path_join(ref_dir(), "golden/tiny-sd1/tokenizer.json")));
  int truncated = 0;
  for (const auto& c : golden["cases"]) {
    std::string prompt = c["prompt"].get<std::string>();
    auto e = tok.encode(prompt);
    auto want = c["input_ids"].get<std::vector<int64_t>>();
    auto want_full = c["untruncated_ids"].get<std::vector<int64_t>>();
    if (e.ids != want) fail_msg("input_ids differ for '%s'", prompt.c_str());
    if (e.untruncated != want_full) fail_msg("untruncated ids differ for '%s'", prompt.c_str());
    assert_int_equal(e.ids.size(), 77);
    if (e.truncated) {
      ++truncated;
      assert_true(!e.removed.empty());
      // diffusers reports the cut tokens decoded: the prompt's tail, lower-cased, words spaced
      assert_string_equal(e.removed.c_str(),
                          "didas , luz natural difusa de bosque nublado , hora dorada , alta resoluci\xc3\xb3n , "
                          "detalles anat\xc3\xb3micos precisos , colores saturados naturales");
    }
  }
  assert_int_equal(truncated, 1);  // the long Spanish prompt
}

static void test_normalisation(void** state) {
  (void)state;
  ClipTokenizer tok(tokenizer_dir());
  // "colibrí" with a combining acute accent tokenises like the precomposed one.
  assert_true(tok.tokenize("colibri\xcc\x81") == tok.tokenize("colibr\xc3\xad"));
  assert_true(tok.tokenize("\xc3\x91" "AND\xc3\x9a") == tok.tokenize("\xc3\xb1" "and\xc3\xba"));
  assert_true(tok.tokenize("  a\t\n b ") == tok.tokenize("a b"));
  // special tokens in the text are recognised, not spelled out
  auto ids = tok.tokenize("a<|endoftext|>b");
  assert_int_equal(ids.size(), 3);
  assert_int_equal(ids[1], tok.eos());
  assert_string_equal(tok.decode(tok.tokenize("criatura especulativa colombiana")).c_str(),
                      "criatura especulativa colombiana");
  std::u32string hangul = bioesp::text::nfc(U"\u1100\u1161\u11A8");
  assert_true(hangul == U"\uAC01");
}

static void expect_broken(const char* vocab, const char* merges, bioesp_status want, const char* fragment) {
  std::string dir = path_join(temp_dir(), "tok");
  std::string cmd = "rm -rf '" + dir + "' && mkdir -p '" + dir + "'";
  assert_int_equal(system(cmd.c_str()), 0);
  if (vocab) write_file((dir + "/vocab.json").c_str(), vocab, strlen(vocab));
  if (merges) write_file((dir + "/merges.txt").c_str(), merges, strlen(merges));
  try {
    ClipTokenizer t(dir);
    fail_msg("a broken tokenizer folder was accepted (%s)", fragment);
  } catch (const bioesp::Error& e) {
    assert_int_equal(e.status(), want);
    if (!strstr(e.what(), fragment)) fail_msg("message '%s' lacks '%s'", e.what(), fragment);
  }
}

static void test_broken_folders(void** state) {
  (void)state;
  const char* vocab = "{\"a</w>\": 0, \"b\": 1, \"ab</w>\": 2, \"<|startoftext|>\": 3, \"<|endoftext|>\": 4}";
  expect_broken(vocab, nullptr, BIOESP_ERR_IO, "merges.txt");
  expect_broken(nullptr, "#version: 0.2\na b</w>\n", BIOESP_ERR_IO, "vocab.json");
  expect_broken(vocab, "#version: 0.2\nab\n", BIOESP_ERR_FORMAT, "merges.txt:2");
  expect_broken(vocab, "#version: 0.2\nx y</w>\n", BIOESP_ERR_FORMAT, "not in vocab.json");
  expect_broken(vocab, "", BIOESP_ERR_FORMAT, "no merges");
  expect_broken("{\"a\": ", "a b\n", BIOESP_ERR_FORMAT, "malformed JSON");
  expect_broken("{\"a\": 0}", "#version: 0.2\n", BIOESP_ERR_FORMAT, "no merges");
}

// A vocabulary learned from captions: CLIP's layout, read back by the tokenizer, frequent words
// whole, rare ones in pieces that decode to the text, the same files on every run.
static void test_learned_vocabulary(void** state) {
  (void)state;
  std::vector<std::string> captions;
  for (int i = 0; i < 20; ++i) captions.push_back("lagarto, lizard, reptil, animal");
  for (int i = 0; i < 5; ++i) captions.push_back("colibrí, hummingbird, ave, bird, animal");
  captions.push_back("frailejón, planta");
  const std::string a = temp_dir(), b = temp_dir();
  const int size = bioesp::text::build_clip_bpe(captions, 550, a);
  assert_int_equal(size, 550);
  assert_int_equal(bioesp::text::build_clip_bpe(captions, 550, b), 550);
  for (const char* f : {"/vocab.json", "/merges.txt"})
    assert_true(bioesp::io::read_text_file(a + f) == bioesp::io::read_text_file(b + f));
  json vocab = json::parse(bioesp::io::read_text_file(a + "/vocab.json"));
  assert_int_equal(vocab.size(), 550);
  assert_int_equal(vocab["<|endoftext|>"].get<int>(), 549);
  ClipTokenizer tok(a);
  assert_int_equal(tok.tokenize("lagarto").size(), 1);  // frequent: one token
  assert_int_equal(tok.tokenize("Lagarto  ANIMAL").size(), 2);
  assert_true(tok.tokenize("frailejón").size() > 1);   // once: pieces
  for (const char* text : {"lagarto colibrí", "frailejón", "cactus jaguar 🦎"})
    assert_string_equal(tok.decode(tok.encode(text).ids).c_str(), text);
  // A small corpus stops early: no pair occurs twice any more.
  const std::string c = temp_dir();
  assert_true(bioesp::text::build_clip_bpe({"ab"}, 5000, c) == 514);
  try {
    bioesp::text::build_clip_bpe(captions, 100, temp_dir());
    fail_msg("a vocabulary smaller than the byte symbols was accepted");
  } catch (const bioesp::Error& e) {
    assert_int_equal(e.status(), BIOESP_ERR_INVALID_ARGUMENT);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_learned_vocabulary),
      cmocka_unit_test(test_golden_prompts),
      cmocka_unit_test(test_normalisation),
      cmocka_unit_test(test_broken_folders),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
