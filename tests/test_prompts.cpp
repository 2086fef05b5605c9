// Prompts as people write them: A1111's parser on its documented examples (exact weights) and on
// hostile input; the 75-token windows (BREAK, comma backtracking, embeddings kept whole, SD 2.x
// padding); weighted encodings against plain ones on the tiny model; textual-inversion
// embeddings from A1111's .pt and .safetensors and diffusers' layout.
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <algorithm>
#include <cstring>
#include <functional>

#include "core/error.h"
#include "io/safetensors.h"
#include "io/textual_inversion.h"
#include "models/loader.h"
#include "pipeline/pipeline.h"
#include "text/prompt_chunks.h"
#include "text/prompt_parser.h"
extern "C" {
#include "support/testutil.h"
}

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
extern "C" {
#include <cmocka.h>
}

using namespace bioesp;
using Runs = std::vector<std::pair<std::string, double>>;

static std::unique_ptr<pipeline::StableDiffusion> sd;

static int setup(void** state) {
  (void)state;
  sd = pipeline::StableDiffusion::load(path_join(ref_dir(), "models/tiny-sd1"), {});
  return 0;
}

static void expect_parse(const std::string& prompt, const Runs& want) {
  auto got = text::parse_prompt_attention(prompt);
  bool same = got.size() == want.size();
  for (size_t i = 0; same && i < got.size(); ++i) same = got[i].text == want[i].first && got[i].weight == want[i].second;
  if (same) return;
  for (const auto& r : got) print_message("  ('%s', %.17g)\n", r.text.c_str(), r.weight);
  fail_msg("'%s' parsed otherwise than A1111 parses it", prompt.c_str());
}

static void expect_refused(const std::function<void()>& call, bioesp_status status, const std::string& fragment) {
  try {
    call();
    fail_msg("accepted; wanted an error with '%s'", fragment.c_str());
  } catch (const Error& e) {
    if (e.status() != status || !strstr(e.what(), fragment.c_str()))
      fail_msg("'%s' (wanted status %d with '%s')", e.what(), status, fragment.c_str());
  }
}

// The docstring of A1111's parse_prompt_attention, then the issue's cases.
static void test_parser_a1111_examples(void** state) {
  (void)state;
  expect_parse("normal text", {{"normal text", 1.0}});
  expect_parse("an (important) word", {{"an ", 1.0}, {"important", 1.1}, {" word", 1.0}});
  expect_parse("(unbalanced", {{"unbalanced", 1.1}});
  expect_parse("\\(literal\\]", {{"(literal]", 1.0}});
  expect_parse("(unnecessary)(parens)", {{"unnecessaryparens", 1.1}});
  expect_parse("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
               {{"a ", 1.0}, {"house", 1.5730000000000004}, {" ", 1.1}, {"on", 1.0}, {" a ", 1.1}, {"hill", 0.55},
                {", sun, ", 1.1}, {"sky", 1.4641000000000006}, {".", 1.1}});
  expect_parse("a (very) [strange] ((creature))", {{"a ", 1.0}, {"very", 1.1}, {" ", 1.0}, {"strange", 0.9090909090909091},
                                                   {" ", 1.0}, {"creature", 1.2100000000000002}});
  expect_parse("(colibr\xc3\xad:1.3) BREAK helecho", {{"colibr\xc3\xad", 1.3}, {"", 1.0}, {"BREAK", -1.0}, {"helecho", 1.0}});
  expect_parse("\\(literal\\)", {{"(literal)", 1.0}});
  expect_parse("(a [b", {{"a ", 1.1}, {"b", 1.0}});
  expect_parse("", {{"", 1.0}});
  // Weights of 0 and negative weights are taken as they are, as A1111 takes them: neither
  // refused nor clamped (0 zeroes the tokens' rows, a negative flips them, before the mean).
  expect_parse("(x:0) y", {{"x", 0.0}, {" y", 1.0}});
  expect_parse("(x:-1.5) y", {{"x", -1.5}, {" y", 1.0}});
}

// Where Python's regular expressions decide: spaces inside a weight, digits of other scripts,
// a bracketed BREAK (multiplied into text), unmatched closers, a lone backslash.
static void test_parser_quirks(void** state) {
  (void)state;
  expect_parse("(x: 2 )", {{"x", 2.0}});
  expect_parse("(x:\xef\xbc\x91.\xef\xbc\x95)", {{"x", 1.5}});  // fullwidth １.５
  expect_parse("(BREAK) a", {{"", 1.1}, {"BREAK", -1.1}, {"", 1.1}, {" a", 1.0}});
  expect_parse("a BREAK BREAK b", {{"a", 1.0}, {"BREAK", -1.0}, {"", 1.0}, {"BREAK", -1.0}, {"b", 1.0}});
  expect_parse("aBREAK b_BREAK BREAKs", {{"aBREAK b_BREAK BREAKs", 1.0}});
  expect_parse("[[a]:2 b", {{"a", 0.8264462809917354}, {":2 b", 0.9090909090909091}});
  expect_parse("x:1.2) y]", {{"x:1.2) y]", 1.0}});
  expect_parse("a\\b", {{"ab", 1.0}});
  assert_true(text::is_break({"BREAK", -1.0}));
  assert_false(text::is_break({"BREAK", -1.1}));
}

static void test_parser_refuses(void** state) {
  (void)state;
  auto parse = [](const std::string& p) { return [p] { text::parse_prompt_attention(p); }; };
  expect_refused(parse("(x:1.2.3)"), BIOESP_ERR_INVALID_ARGUMENT, "':1.2.3)' is not a number");
  expect_refused(parse("(x:.)"), BIOESP_ERR_INVALID_ARGUMENT, "is not a number");
  expect_refused(parse(std::string(257, '(') + "x"), BIOESP_ERR_INVALID_ARGUMENT, "nested more than 256 deep");
  text::parse_prompt_attention(std::string(256, '[') + "x");
  const std::string huge(400, '9');
  expect_refused(parse("(x:" + huge + ")"), BIOESP_ERR_INVALID_ARGUMENT, "the weight of 'x' is not a finite number");
  expect_refused(parse("((x:" + huge + "):0)"), BIOESP_ERR_INVALID_ARGUMENT, "not a finite number");  // inf × 0
}

// A megabyte of prompt, a hundred thousand brackets, a megabyte-long word: errors or results in
// seconds, never a hang (the BPE merges through a heap; the parser stops at the depth limit).
static void test_hostile_sizes(void** state) {
  (void)state;
  auto start = std::chrono::steady_clock::now();
  expect_refused([] { text::parse_prompt_attention(std::string(100000, '(') + "x" + std::string(100000, ')')); },
                 BIOESP_ERR_INVALID_ARGUMENT, "nested more than 256 deep");
  std::string mb;
  while (mb.size() < (1 << 20)) mb += "(colibr\xc3\xad:1.2), [helecho] BREAK ";
  assert_true(text::parse_prompt_attention(mb).size() > 1000);
  expect_refused([&] { sd->encode_prompts({mb}, 0, pipeline::PromptSyntax::Weighted); }, BIOESP_ERR_INVALID_ARGUMENT,
                 "at most 32 (2400 tokens)");
  std::string cut;
  auto plain = sd->encode_prompts({mb}, 0, pipeline::PromptSyntax::Plain, [&](const std::string& c) { cut = c; }).embeds;
  assert_int_equal(plain.size(1), 77);
  assert_true(cut.size() > 100000);
  const std::string word(1 << 20, 'a');
  auto ids = sd->tokenizer().tokenize(word);
  assert_string_equal(sd->tokenizer().decode(ids).c_str(), word.c_str());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  print_message("hostile sizes handled in %.1f s\n", seconds);
}

// `n` words of one token each (ten words in turn), for windows whose contents are known.
static std::vector<std::string> one_token_words(size_t n) {
  static const char* const kWords[] = {"cat", "dog", "bird", "fish", "tree", "leaf", "red", "blue", "green", "moss"};
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) out.push_back(kWords[i % 10]);
  for (const char* w : kWords) assert_int_equal(sd->tokenizer().tokenize(w).size(), 1);
  return out;
}

static std::string join(const std::vector<std::string>& words, size_t from, size_t to) {
  std::string out;
  for (size_t i = from; i < to; ++i) out += (i > from ? " " : "") + words[i];
  return out;
}

static std::vector<text::PromptChunk> windows(const std::string& prompt) {
  return text::chunk_prompt(sd->tokenizer(), text::parse_prompt_attention(prompt));
}

static void test_windows(void** state) {
  (void)state;
  const auto& tok = sd->tokenizer();
  auto one = windows("una criatura especulativa colombiana");
  assert_int_equal(one.size(), 1);
  assert_true(one[0].ids == tok.encode("una criatura especulativa colombiana").ids);
  assert_true(one[0].weights == std::vector<float>(77, 1.0f));

  auto words = one_token_words(150);
  auto two = windows(join(words, 0, 150));
  assert_int_equal(two.size(), 2);
  assert_true(two[0].ids == tok.encode(join(words, 0, 75)).ids);
  assert_true(two[1].ids == tok.encode(join(words, 75, 150)).ids);

  auto broken = windows("cat BREAK dog");
  assert_int_equal(broken.size(), 2);
  assert_true(broken[1].ids == tok.encode("dog").ids);

  // A comma 3 tokens before a full window's end: what follows it opens the next window.
  auto near = windows(join(words, 0, 72) + ", " + join(words, 72, 82));
  assert_int_equal(near.size(), 2);
  assert_int_equal(near[0].ids[73], tok.find(",</w>"));
  assert_int_equal(near[0].ids[74], tok.eos());
  assert_true(near[1].ids == tok.encode(join(words, 72, 82)).ids);
  // 25 tokens before the end is beyond A1111's 20: the window is filled.
  auto far = windows(join(words, 0, 50) + ", " + join(words, 50, 90));
  assert_true(far[0].ids == tok.encode(join(words, 0, 50) + ", " + join(words, 50, 74)).ids);

  auto weighted = windows("a (cat:1.5) [dog]");
  assert_float_equal(weighted[0].weights[1], 1.0f, 0);
  assert_float_equal(weighted[0].weights[2], 1.5f, 0);
  assert_float_equal(weighted[0].weights[3], static_cast<float>(1 / 1.1), 0);
  assert_float_equal(weighted[0].weights[4], 1.0f, 0);
}

// SD 2.x pads with "!" after the first eos, in every window, as A1111's process_tokens does.
static void test_windows_pad_after_eos(void** state) {
  (void)state;
  text::ClipTokenizer tok(path_join(ref_dir(), "models/tiny-sdxl/tokenizer_2"));
  assert_true(tok.pad() != tok.eos());
  auto w = text::chunk_prompt(tok, text::parse_prompt_attention("a colibr\xc3\xad BREAK [fern]"));
  assert_int_equal(w.size(), 2);
  assert_true(w[0].ids == tok.encode("a colibr\xc3\xad").ids);
  assert_true(w[1].ids == tok.encode("fern").ids);
}

// An added token's vectors move whole into the next window rather than straddle two.
static void test_windows_keep_embeddings_whole(void** state) {
  (void)state;
  text::ClipTokenizer tok(path_join(ref_dir(), "models/tiny-sd1/tokenizer"));
  tok.set_added_tokens({{"<bichito>", 49408, 3}});
  auto ids = tok.tokenize("A <BICHITO>, (<bichito>)");
  assert_true(ids == std::vector<int64_t>({tok.find("a</w>"), 49408, 49409, 49410, tok.find(",</w>"), tok.find("(</w>"),
                                           49408, 49409, 49410, tok.find(")</w>")}));
  assert_string_equal(tok.decode(ids).c_str(), "a <bichito> , ( <bichito> )");
  std::string prompt;
  for (int i = 0; i < 74; ++i) prompt += "cat ";
  auto w = text::chunk_prompt(tok, text::parse_prompt_attention(prompt + "(<bichito>:1.2)"));
  assert_int_equal(w.size(), 2);
  assert_int_equal(w[0].ids[75], tok.eos());
  assert_true(std::vector<int64_t>(w[1].ids.begin() + 1, w[1].ids.begin() + 4) == std::vector<int64_t>({49408, 49409, 49410}));
  assert_float_equal(w[1].weights[2], 1.2f, 0);
  // A name that begins and ends with letters stands as a word of its own.
  tok.set_added_tokens({{"bichito", 49408, 1}});
  auto has_it = [&](const std::string& p) {
    auto v = tok.tokenize(p);
    return std::find(v.begin(), v.end(), 49408) != v.end();
  };
  assert_true(has_it("un bichito, verde"));
  assert_true(has_it("BICHITO"));
  assert_false(has_it("bichitos"));
  assert_false(has_it("unbichito"));
  expect_refused([&] { tok.set_added_tokens({{"bichito", 49408, 1}, {"Bichito", 49409, 1}}); }, BIOESP_ERR_INVALID_ARGUMENT,
                 "read as the same words");
  expect_refused([&] { tok.set_added_tokens({{"  ", 49408, 1}}); }, BIOESP_ERR_INVALID_ARGUMENT, "no words");
}

static torch::Tensor encode(const std::string& prompt, pipeline::PromptSyntax syntax) {
  torch::NoGradGuard no_grad;
  return sd->encode_prompts({prompt}, 0, syntax).embeds;
}

static torch::Tensor hidden_states(const std::vector<int64_t>& ids) {
  torch::NoGradGuard no_grad;
  return sd->text_encoder()->encode(torch::tensor(ids, torch::kLong).view({1, -1}));
}

static void test_weighted_without_syntax_is_plain(void** state) {
  (void)state;
  const std::string p = "una criatura especulativa colombiana, de colores vivos";
  assert_true(torch::equal(encode(p, pipeline::PromptSyntax::Weighted), encode(p, pipeline::PromptSyntax::Plain)));
}

// 150 tokens: [1, 154, D], each window the plain encoding of its 75 tokens.
static void test_weighted_long_prompt(void** state) {
  (void)state;
  auto words = one_token_words(150);
  auto z = encode(join(words, 0, 150), pipeline::PromptSyntax::Weighted);
  assert_int_equal(z.size(0), 1);
  assert_int_equal(z.size(1), 154);
  assert_int_equal(z.size(2), sd->text_encoder()->config().hidden_size);
  assert_true(torch::equal(z.slice(1, 0, 77), encode(join(words, 0, 75), pipeline::PromptSyntax::Plain)));
  assert_true(torch::equal(z.slice(1, 77, 154), encode(join(words, 75, 150), pipeline::PromptSyntax::Plain)));
}

// A weight scales only its tokens' rows; then the whole window is rescaled to its former mean.
static void test_weights_and_mean(void** state) {
  (void)state;
  auto z = hidden_states(sd->tokenizer().encode("a cat sits").ids);  // bos a cat sits eos ...
  auto weighted = encode("a (cat:1.5) sits", pipeline::PromptSyntax::Weighted);
  auto w = torch::ones({1, 77});
  w[0][2] = 1.5;
  auto before = z * w.unsqueeze(-1);
  auto rows_changed = (before != z).any(-1)[0];
  assert_true(rows_changed[2].item<bool>());
  assert_int_equal(rows_changed.sum().item<int64_t>(), 1);
  const double k = z.mean().item<double>() / before.mean().item<double>();
  assert_true(torch::allclose(weighted, before * k, 1e-5, 1e-6));
  assert_true(std::abs(weighted.mean().item<double>() - z.mean().item<double>()) < 1e-6);
  // weights that cancel the mean are refused rather than drawn as inf
  auto h = torch::ones({1, 2, 1});
  expect_refused([&] { pipeline::apply_prompt_weights(h, torch::tensor({{1.0f, -1.0f}})); }, BIOESP_ERR_INVALID_ARGUMENT,
                 "cancel its encoding's mean");
}

// The shorter of a prompt and its negative is filled with empty windows; a generation with a
// long weighted prompt runs (the UNet's cross-attention takes any length).
static void test_padding_and_generation(void** state) {
  (void)state;
  auto words = one_token_words(150);
  auto z = encode("colibr\xc3\xad", pipeline::PromptSyntax::Weighted);
  auto padded = sd->pad_prompt_embeds(z, 231, 0);
  assert_int_equal(padded.size(1), 231);
  auto empty = encode("", pipeline::PromptSyntax::Plain);
  assert_true(torch::equal(padded.slice(1, 0, 77), z));
  assert_true(torch::equal(padded.slice(1, 77, 154), empty));
  assert_true(torch::equal(padded.slice(1, 154, 231), empty));
  pipeline::GenerateOptions g;
  g.prompts = {join(words, 0, 150)};
  g.negative_prompt = "[borroso] BREAK (feo:1.2)";
  g.syntax = pipeline::PromptSyntax::Weighted;
  g.steps = 2;
  auto image = sd->generate(g);
  assert_true(torch::isfinite(image).all().item<bool>());
}

// --- textual inversion ----------------------------------------------------------------------

static const int64_t kWidth = 32;  // the tiny model's text encoder

static torch::Tensor test_vectors(int64_t n, int64_t width = kWidth) {
  return torch::arange(n * width, torch::kFloat32).view({n, width}) / 100.0 - 0.3;
}

static std::string write_safetensors_file(const std::string& name, const std::string& key, const torch::Tensor& v) {
  std::string path = path_join(temp_dir(), name.c_str());
  io::write_safetensors(path, std::vector<io::Tensor>{models::from_torch(key, v)}, {});
  return path;
}

// A torch.save archive as A1111's Embedding.save writes it (protocol 2): {"string_to_token":
// {"*": 265}, "string_to_param": {"*": Parameter(vectors)}, "name", "step", "sd_checkpoint": None,
// "sd_checkpoint_name": None}; `global` replaces _rebuild_parameter (to name code instead).
static std::string write_a1111_pt(const std::string& name, const torch::Tensor& v,
                                  const std::string& global = "torch._utils\n_rebuild_parameter\n") {
  auto X = [](const std::string& s) {  // BINUNICODE
    const uint32_t n = static_cast<uint32_t>(s.size());
    return "X" + std::string(reinterpret_cast<const char*>(&n), 4) + s;
  };
  auto K = [](int64_t k) { return "K" + std::string(1, static_cast<char>(k)); };  // BININT1
  const uint32_t numel = static_cast<uint32_t>(v.numel());
  const std::string hooks = "ccollections\nOrderedDict\n)R";
  const std::string pkl =
      "\x80\x02}(" + X("string_to_token") + "}(" + X("*") + "M\x09\x01u" + X("string_to_param") + "}(" + X("*") + "c" +
      global + "(ctorch._utils\n_rebuild_tensor_v2\n((" + X("storage") + "ctorch\nFloatStorage\n" + X("0") + X("cpu") + "J" +
      std::string(reinterpret_cast<const char*>(&numel), 4) + "tQ" + K(0) + K(v.size(0)) + K(v.size(1)) + "\x86" +
      K(v.size(1)) + K(1) + "\x86\x89" + hooks + "tR\x88" + hooks + "tRu" + X("name") + X("bichito") + X("step") +
      "M\xf4\x01" + X("sd_checkpoint") + "N" + X("sd_checkpoint_name") + "Nu.";
  auto values = v.contiguous();
  zip_entry e[3] = {{"bichito/data.pkl", pkl.data(), pkl.size()},
                    {"bichito/version", "3\n", 2},
                    {"bichito/data/0", values.data_ptr<float>(), static_cast<size_t>(values.numel()) * sizeof(float)}};
  std::string path = path_join(temp_dir(), name.c_str());
  write_zip(path.c_str(), e, 3);
  return path;
}

// A 2-vector embedding for <bichito>: the text encoder's input embeddings hold its vectors at the
// token's positions, and only there.
static void test_embedding_vectors_in_place(void** state) {
  (void)state;
  auto v = test_vectors(2);
  auto path = write_safetensors_file("learned_embeds.safetensors", "<bichito>", v);
  assert_string_equal(sd->add_embedding(path, "").c_str(), "<bichito>");
  const int64_t V = sd->text_encoder()->config().vocab_size;
  auto ids = sd->tokenizer().encode("a <bichito> creature").ids;
  assert_int_equal(ids[2], V);
  assert_int_equal(ids[3], V + 1);
  torch::NoGradGuard no_grad;
  auto& emb = sd->text_encoder()->text_model->embeddings;
  auto t = torch::tensor(ids, torch::kLong).view({1, -1});
  auto tokens = emb->forward(t) - emb->position_embedding->forward(torch::arange(77)).unsqueeze(0);
  assert_true(torch::allclose(tokens[0][2], v[0], 0, 1e-6));
  assert_true(torch::allclose(tokens[0][3], v[1], 0, 1e-6));
  auto plain = sd->tokenizer().encode("a creature").ids;
  assert_true(torch::allclose(tokens[0][1], emb->token_embedding->weight[plain[1]], 0, 1e-6));
  assert_true(torch::allclose(tokens[0][4], emb->token_embedding->weight[plain[2]], 0, 1e-6));
  assert_true(sd->remove_embedding("<bichito>"));
  assert_false(sd->remove_embedding("<bichito>"));
  assert_true(sd->tokenizer().encode("a <bichito> creature").ids[2] < V);
}

// The same vectors from A1111's .pt (zip pickle), A1111's safetensors and diffusers' layout
// give the same encodings, plain and weighted; the token defaults to the file's stem.
static void test_embedding_layouts_agree(void** state) {
  (void)state;
  auto v = test_vectors(3);
  const std::vector<std::string> files = {write_a1111_pt("bichito.pt", v),
                                          write_safetensors_file("bichito.safetensors", "emb_params", v),
                                          write_safetensors_file("learned_embeds.safetensors", "bichito", v)};
  std::vector<torch::Tensor> plain, weighted;
  for (const auto& f : files) {
    assert_string_equal(sd->add_embedding(f, "").c_str(), "bichito");
    plain.push_back(encode("un bichito verde", pipeline::PromptSyntax::Plain));
    weighted.push_back(encode("un (bichito:1.2) BREAK [verde]", pipeline::PromptSyntax::Weighted));
  }
  assert_true(sd->remove_embedding("bichito"));
  for (size_t i = 1; i < files.size(); ++i) {
    assert_true(torch::equal(plain[i], plain[0]));
    assert_true(torch::equal(weighted[i], weighted[0]));
  }
  assert_false(torch::equal(plain[0], encode("un bichito verde", pipeline::PromptSyntax::Plain)));
}

static void test_embedding_refused(void** state) {
  (void)state;
  auto add = [](const std::string& path) { return [path] { sd->add_embedding(path, "x"); }; };
  expect_refused(add(write_safetensors_file("wide.safetensors", "emb_params", test_vectors(1, 768))), BIOESP_ERR_MISMATCH,
                 "width 768, but this model's text encoder takes 32");
  expect_refused(add(write_a1111_pt("code.pt", test_vectors(1), "os\nsystem\n")), BIOESP_ERR_FORMAT, "'os.system'");
  auto nan = test_vectors(2);
  nan[1][3] = NAN;
  expect_refused(add(write_safetensors_file("nan.safetensors", "emb_params", nan)), BIOESP_ERR_FORMAT, "NaN or infinite");
  expect_refused(add(write_safetensors_file("long.safetensors", "emb_params", test_vectors(76))), BIOESP_ERR_FORMAT,
                 "76 vectors, more than the 75");
  expect_refused(add(write_safetensors_file("cube.safetensors", "emb_params", torch::zeros({2, 2, kWidth}))), BIOESP_ERR_FORMAT,
                 "not a list of vectors");
  std::string two = path_join(temp_dir(), "two.safetensors");
  io::write_safetensors(two, std::vector<io::Tensor>{models::from_torch("a", test_vectors(1)), models::from_torch("b", test_vectors(1))}, {});
  expect_refused(add(two), BIOESP_ERR_FORMAT, "it holds 2 tensors: a, b");
  std::string sdxl = path_join(temp_dir(), "sdxl.safetensors");
  io::write_safetensors(sdxl, std::vector<io::Tensor>{models::from_torch("clip_g", test_vectors(1, 1280)), models::from_torch("clip_l", test_vectors(1, 768))}, {});
  expect_refused(add(sdxl), BIOESP_ERR_UNSUPPORTED, "SDXL");
  expect_refused(add(path_join(temp_dir(), "missing.pt")), BIOESP_ERR_NOT_FOUND, "no such embedding file");
  // nothing was attached along the way
  assert_false(sd->remove_embedding("x"));
}

int main(void) {
  torch::set_num_threads(2);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parser_a1111_examples),
      cmocka_unit_test(test_parser_quirks),
      cmocka_unit_test(test_parser_refuses),
      cmocka_unit_test(test_hostile_sizes),
      cmocka_unit_test(test_windows),
      cmocka_unit_test(test_windows_pad_after_eos),
      cmocka_unit_test(test_windows_keep_embeddings_whole),
      cmocka_unit_test(test_weighted_without_syntax_is_plain),
      cmocka_unit_test(test_weighted_long_prompt),
      cmocka_unit_test(test_weights_and_mean),
      cmocka_unit_test(test_padding_and_generation),
      cmocka_unit_test(test_embedding_vectors_in_place),
      cmocka_unit_test(test_embedding_layouts_agree),
      cmocka_unit_test(test_embedding_refused),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
