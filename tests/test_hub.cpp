// Hub internals: SHA-256 and git blob ids (the cache's blob names), repository ids, the cache
// layout huggingface_hub uses, which files a pull selects, and the model card.
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/hash.h"
#include "hub/api.h"
#include "hub/cache.h"
#include "hub/model_card.h"
#include "hub/pull.h"
#include "io/file.h"
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

static std::string sha256_of(const std::string& s) {
  Sha256 h;
  h.update(s.data(), s.size());
  return h.hex();
}

static void test_sha256(void** state) {
  (void)state;
  assert_string_equal(sha256_of("").c_str(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert_string_equal(sha256_of("abc").c_str(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert_string_equal(sha256_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").c_str(),
                      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // A million 'a' fed unevenly: block boundaries inside updates.
  Sha256 h;
  std::string chunk(997, 'a');
  size_t left = 1000000;
  while (left > 0) {
    size_t n = std::min(left, chunk.size());
    h.update(chunk.data(), n);
    left -= n;
  }
  assert_string_equal(h.hex().c_str(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // git hash-object: "hello\n" and the empty blob.
  assert_string_equal(git_blob_sha1("hello\n").c_str(), "ce013625030ba8dba906f756967f9e9ca394464a");
  assert_string_equal(git_blob_sha1("").c_str(), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
}

static void test_repo_ids(void** state) {
  (void)state;
  assert_true(hub::looks_like_repo_id("CompVis/stable-diffusion-v1-4"));
  assert_true(hub::looks_like_repo_id("ana/criaturas@v1.0"));
  assert_false(hub::looks_like_repo_id("models/tiny-sd1/unet"));
  assert_false(hub::looks_like_repo_id("/abs/path"));
  assert_false(hub::looks_like_repo_id("./x"));
  assert_false(hub::looks_like_repo_id("model.safetensors"));
  assert_false(hub::looks_like_repo_id("a/../b"));
  auto r = hub::parse_repo("ana/criaturas@refs/pr/1");
  assert_string_equal(r.id.c_str(), "ana/criaturas");
  assert_string_equal(r.revision.c_str(), "refs/pr/1");
  assert_string_equal(hub::parse_repo("ana/criaturas").revision.c_str(), "main");
  bool threw = false;
  try {
    hub::parse_repo("not an id");
  } catch (const Error& e) {
    threw = e.status() == BIOESP_ERR_INVALID_ARGUMENT;
  }
  assert_true(threw);
  assert_string_equal(hub::cache_folder_name("CompVis/stable-diffusion-v1-4").c_str(), "models--CompVis--stable-diffusion-v1-4");
  assert_string_equal(hub::repo_id_of_cache_path("/h/.cache/huggingface/hub/models--CompVis--stable-diffusion-v1-4/snapshots/"
                                                 "0123456789abcdef0123456789abcdef01234567").c_str(),
                      "CompVis/stable-diffusion-v1-4");
  assert_string_equal(hub::repo_id_of_cache_path("/data/models/sd").c_str(), "");
  assert_string_equal(hub::origin_of("https://HF.co:443/api/x?y").c_str(), "https://hf.co:443");
  assert_string_equal(hub::encode_path("unet/a b+c.json").c_str(), "unet/a%20b%2Bc.json");
}

static void test_settings_from_environment(void** state) {
  (void)state;
  char dir[] = "/tmp/bioesp-hub-XXXXXX";
  assert_non_null(mkdtemp(dir));
  const std::string home = dir;
  io::write_file_atomically(home + "/token", [](std::FILE* f) { std::fputs("hf_from_file\n", f); });
  setenv("HF_HOME", dir, 1);
  unsetenv("HF_TOKEN");
  unsetenv("HF_HUB_CACHE");
  unsetenv("HF_TOKEN_PATH");
  unsetenv("HUGGINGFACE_HUB_CACHE");
  setenv("HF_ENDPOINT", "http://127.0.0.1:1/", 1);
  setenv("HF_HUB_OFFLINE", "TRUE", 1);
  auto s = hub::resolve({});
  assert_string_equal(s.token.c_str(), "hf_from_file");
  assert_string_equal(s.cache_dir.c_str(), (home + "/hub").c_str());
  assert_string_equal(s.endpoint.c_str(), "http://127.0.0.1:1");
  assert_true(s.offline);
  setenv("HF_TOKEN", "hf_env", 1);
  setenv("HF_HUB_CACHE", "/elsewhere", 1);
  s = hub::resolve({});
  assert_string_equal(s.token.c_str(), "hf_env");
  assert_string_equal(s.cache_dir.c_str(), "/elsewhere");
  hub::Settings given;
  given.token = "hf_given";
  assert_string_equal(hub::resolve(given).token.c_str(), "hf_given");
  for (const char* v : {"HF_HOME", "HF_TOKEN", "HF_HUB_CACHE", "HF_ENDPOINT", "HF_HUB_OFFLINE"}) unsetenv(v);
  std::remove((home + "/token").c_str());
  rmdir(dir);
}

static hub::RemoteFile file(const std::string& path, bool lfs = false) {
  hub::RemoteFile f;
  f.path = path;
  f.oid = std::string(40, 'a');
  if (lfs) f.sha256 = std::string(64, 'b');
  return f;
}

static std::string paths(const std::vector<hub::RemoteFile>& files) {
  std::string out;
  for (const auto& f : files) out += f.path + "\n";
  return out;
}

static void test_select_files(void** state) {
  (void)state;
  // CompVis/stable-diffusion-v1-4's layout, abridged.
  std::vector<hub::RemoteFile> tree = {
      file(".gitattributes"), file("README.md"), file("model_index.json"), file("sd-v1-4.ckpt", true),
      file("feature_extractor/preprocessor_config.json"), file("safety_checker/config.json"),
      file("safety_checker/model.safetensors", true), file("safety_checker/pytorch_model.bin", true),
      file("scheduler/scheduler_config.json"), file("text_encoder/config.json"),
      file("text_encoder/model.safetensors", true), file("text_encoder/pytorch_model.bin", true),
      file("text_encoder/model.fp16.safetensors", true), file("text_encoder/flax_model.msgpack", true),
      file("tokenizer/merges.txt"), file("tokenizer/vocab.json"), file("unet/config.json"),
      file("unet/diffusion_pytorch_model.safetensors", true), file("unet/diffusion_pytorch_model.bin", true),
      file("unet/diffusion_pytorch_model.fp16.safetensors", true), file("unet/diffusion_pytorch_model.fp16.bin", true),
      file("vae/config.json"), file("vae/diffusion_pytorch_model.bin", true),
      file("vae/diffusion_pytorch_model.fp16.bin", true)};
  assert_string_equal(paths(hub::select_files(tree, "")).c_str(),
                      ".gitattributes\nREADME.md\nfeature_extractor/preprocessor_config.json\nmodel_index.json\n"
                      "safety_checker/config.json\nscheduler/scheduler_config.json\ntext_encoder/config.json\n"
                      "text_encoder/model.safetensors\ntokenizer/merges.txt\ntokenizer/vocab.json\nunet/config.json\n"
                      "unet/diffusion_pytorch_model.safetensors\nvae/config.json\nvae/diffusion_pytorch_model.bin\n");
  const std::string fp16 = paths(hub::select_files(tree, "fp16"));
  assert_non_null(std::strstr(fp16.c_str(), "unet/diffusion_pytorch_model.fp16.safetensors\n"));
  assert_null(std::strstr(fp16.c_str(), "unet/diffusion_pytorch_model.safetensors\n"));
  assert_non_null(std::strstr(fp16.c_str(), "vae/diffusion_pytorch_model.fp16.bin\n"));
  assert_non_null(std::strstr(fp16.c_str(), "text_encoder/model.fp16.safetensors\n"));
  // A sharded UNet: the index and every shard of the chosen format.
  std::vector<hub::RemoteFile> sharded = {
      file("model_index.json"), file("unet/config.json"), file("unet/diffusion_pytorch_model.safetensors.index.json"),
      file("unet/diffusion_pytorch_model-00001-of-00002.safetensors", true),
      file("unet/diffusion_pytorch_model-00002-of-00002.safetensors", true),
      file("unet/diffusion_pytorch_model.bin.index.json"), file("unet/diffusion_pytorch_model-00001-of-00002.bin", true)};
  assert_string_equal(paths(hub::select_files(sharded, "")).c_str(),
                      "model_index.json\nunet/config.json\nunet/diffusion_pytorch_model-00001-of-00002.safetensors\n"
                      "unet/diffusion_pytorch_model-00002-of-00002.safetensors\n"
                      "unet/diffusion_pytorch_model.safetensors.index.json\n");
  // stabilityai/stable-diffusion-xl-base-1.0's layout, abridged: the second text encoder and
  // tokenizer come along; folders its model_index.json does not name (another VAE, the ONNX and
  // OpenVINO exports) and the ONNX, Flax and OpenVINO weights beside the safetensors do not.
  std::vector<hub::RemoteFile> xl = {
      file("model_index.json"), file("sd_xl_base_1.0.safetensors", true), file("scheduler/scheduler_config.json"),
      file("text_encoder/config.json"), file("text_encoder/model.safetensors", true),
      file("text_encoder/model.fp16.safetensors", true), file("text_encoder/openvino_model.bin", true),
      file("text_encoder/model.onnx", true), file("text_encoder_2/config.json"),
      file("text_encoder_2/model.safetensors", true), file("text_encoder_2/model.fp16.safetensors", true),
      file("text_encoder_2/flax_model.msgpack", true), file("text_encoder_2/model.onnx_data", true),
      file("tokenizer/vocab.json"), file("tokenizer_2/merges.txt"), file("tokenizer_2/special_tokens_map.json"),
      file("tokenizer_2/vocab.json"), file("unet/config.json"), file("unet/diffusion_pytorch_model.safetensors", true),
      file("unet/diffusion_pytorch_model.fp16.safetensors", true), file("vae/config.json"),
      file("vae/diffusion_pytorch_model.safetensors", true), file("vae/diffusion_pytorch_model.fp16.safetensors", true),
      file("vae_1_0/config.json"), file("vae_1_0/diffusion_pytorch_model.safetensors", true),
      file("vae_decoder/config.json"), file("vae_decoder/openvino_model.bin", true), file("vae_decoder/model.onnx", true)};
  const auto xl_components = hub::pipeline_components(
      R"({"_class_name": "StableDiffusionXLPipeline", "force_zeros_for_empty_prompt": true, "add_watermarker": null,
          "scheduler": ["diffusers", "EulerDiscreteScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
          "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"], "tokenizer": ["transformers", "CLIPTokenizer"],
          "tokenizer_2": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
          "vae": ["diffusers", "AutoencoderKL"], "feature_extractor": [null, null]})",
      "sdxl");
  assert_int_equal(xl_components.size(), 8);
  assert_string_equal(paths(hub::select_files(xl, "", xl_components)).c_str(),
                      "model_index.json\nscheduler/scheduler_config.json\ntext_encoder/config.json\n"
                      "text_encoder/model.safetensors\ntext_encoder_2/config.json\ntext_encoder_2/model.safetensors\n"
                      "tokenizer/vocab.json\ntokenizer_2/merges.txt\ntokenizer_2/special_tokens_map.json\ntokenizer_2/vocab.json\n"
                      "unet/config.json\nunet/diffusion_pytorch_model.safetensors\nvae/config.json\n"
                      "vae/diffusion_pytorch_model.safetensors\n");
  const std::string xl16 = paths(hub::select_files(xl, "fp16", xl_components));
  for (const char* f : {"text_encoder/model.fp16.safetensors\n", "text_encoder_2/model.fp16.safetensors\n",
                        "unet/diffusion_pytorch_model.fp16.safetensors\n", "vae/diffusion_pytorch_model.fp16.safetensors\n",
                        "tokenizer_2/vocab.json\n"})
    assert_non_null(std::strstr(xl16.c_str(), f));
  assert_null(std::strstr(xl16.c_str(), "text_encoder_2/model.safetensors\n"));
  assert_null(std::strstr(xl16.c_str(), "vae_1_0"));
  try {
    hub::pipeline_components("[1, 2]", "bad/repo");
    fail_msg("a model_index.json that is not an object was accepted");
  } catch (const Error& e) {
    assert_int_equal(e.status(), BIOESP_ERR_FORMAT);
  }
  // Not a pipeline (a LoRA repository): everything, but no .bin twin of a safetensors file.
  std::vector<hub::RemoteFile> lora = {file("README.md"), file("pytorch_lora_weights.safetensors", true),
                                       file("pytorch_lora_weights.bin", true), file("other_lora.bin", true),
                                       file("image_0.png", true)};
  assert_string_equal(paths(hub::select_files(lora, "")).c_str(),
                      "README.md\nimage_0.png\nother_lora.bin\npytorch_lora_weights.safetensors\n");
}

static void test_cache_layout(void** state) {
  (void)state;
  char dir[] = "/tmp/bioesp-cache-XXXXXX";
  assert_non_null(mkdtemp(dir));
  hub::Cache cache(dir, "ana/criaturas");
  const std::string commit(40, 'c'), etag(64, 'e');
  io::make_directories(cache.repo_dir() + "/blobs");
  io::write_file_atomically(cache.blob(etag), [](std::FILE* f) { std::fputs("weights", f); });
  cache.link(commit, "unet/sub/model.safetensors", etag);
  char target[512] = {};
  const std::string link = cache.snapshot(commit) + "/unet/sub/model.safetensors";
  assert_true(readlink(link.c_str(), target, sizeof target - 1) > 0);
  assert_string_equal(target, ("../../../../blobs/" + etag).c_str());
  assert_string_equal(io::read_text_file(link).c_str(), "weights");
  assert_string_equal(cache.cached_commit("main").c_str(), "");
  cache.write_ref("main", commit);
  assert_string_equal(cache.cached_commit("main").c_str(), commit.c_str());
  assert_string_equal(cache.cached_commit(commit).c_str(), commit.c_str());
  assert_string_equal(io::read_text_file(cache.repo_dir() + "/refs/main").c_str(), commit.c_str());
  cache.mark_missing(commit, "unet/missing.json");
  assert_true(cache.known_missing(commit, "unet/missing.json"));
  assert_false(cache.known_missing(commit, "unet/sub/model.safetensors"));
  assert_string_equal(cache.lock_file(etag).c_str(), (std::string(dir) + "/.locks/models--ana--criaturas/" + etag + ".lock").c_str());
  { hub::FileLock lock(cache.lock_file(etag)); }
  hub::FileLock again(cache.lock_file(etag));  // released by the first one's destructor
  std::string cmd = std::string("rm -rf ") + dir;
  assert_int_equal(system(cmd.c_str()), 0);
}

static void test_model_card(void** state) {
  (void)state;
  hub::CardInput in;
  in.repo = "ana/criaturas";
  in.base_model = "CompVis/stable-diffusion-v1-4";
  in.metadata = {{"bioesp.prompt", "criatura 'especulativa'\ncolombiana"}, {"bioesp.rank", "4"}, {"bioesp.steps", "200"}};
  in.manifest = {nlohmann::json{{"title", "File:Colibrí.jpg"}, {"author", "Ana *María*"}, {"license", "CC BY-SA 4.0"},
                                {"page_url", "https://commons.wikimedia.org/wiki/File:Colibr%C3%AD.jpg"}},
                 nlohmann::json{{"title", "File:Rana.jpg"}, {"author", ""}, {"license", "CC0"}}};
  in.samples = {"validation/step-000200.png"};
  const std::string card = hub::model_card(in);
  auto has = [&](const char* s) { return card.find(s) != std::string::npos; };
  assert_int_equal(card.rfind("---\nbase_model: CompVis/stable-diffusion-v1-4\nlicense: creativeml-openrail-m\n", 0), 0);
  assert_true(has("instance_prompt: 'criatura ''especulativa'' colombiana'\n"));  // quotes doubled, one line
  assert_true(has("- lora\n") && has("- dreambooth\n") && has("- bioesp\n"));
  assert_true(has("    url: 'validation/step-000200.png'\n"));
  assert_true(has("by Ana \\*María\\*, CC BY-SA 4.0"));
  assert_true(has("by unknown author, CC0"));
  assert_true(has("https://commons.wikimedia.org/wiki/File:Colibr%C3%AD.jpg"));
  assert_true(has("share-alike"));
  assert_true(has("| LoRA rank | 4 |"));
  assert_false(has("VAE (in place"));
  assert_true(has("pipe.load_lora_weights(\"ana/criaturas\")"));
  assert_string_equal(hub::base_license("stabilityai/stable-diffusion-xl-base-1.0").c_str(), "openrail++");
  assert_string_equal(hub::base_license("someone/model").c_str(), "other");
  in.manifest.clear();
  assert_true(hub::model_card(in).find("were not published with a bioesp dataset manifest") != std::string::npos);
  // SDXL: named as the base, its tags and pipeline; an SDXL base of unknown id keeps its license.
  in.sdxl = true;
  in.base_model = "stabilityai/stable-diffusion-xl-base-1.0";
  std::string xl = hub::model_card(in);
  assert_int_equal(xl.rfind("---\nbase_model: stabilityai/stable-diffusion-xl-base-1.0\nlicense: openrail++\n", 0), 0);
  assert_true(xl.find("- stable-diffusion-xl\n- stable-diffusion-xl-diffusers\n") != std::string::npos);
  assert_true(xl.find("- stable-diffusion\n") == std::string::npos);
  assert_true(xl.find("(Stable Diffusion XL)") != std::string::npos);
  assert_true(xl.find("pipe = StableDiffusionXLPipeline.from_pretrained(\"stabilityai/stable-diffusion-xl-base-1.0\")") != std::string::npos);
  // The VAE trained with in place of the model's, as the script's card says "Special VAE used".
  in.metadata["bioesp.vae"] = "madebyollin/sdxl-vae-fp16-fix";
  assert_true(hub::model_card(in).find("| VAE (in place of the model's) | madebyollin/sdxl-vae-fp16-fix |") != std::string::npos);
  in.base_model.clear();
  xl = hub::model_card(in);
  assert_true(xl.find("license: openrail++\n") != std::string::npos);
  assert_true(xl.find("A DreamBooth-LoRA of Stable Diffusion XL, trained") != std::string::npos);
  assert_true(hub::names_sdxl("someone/Juggernaut-SDXL") && !hub::names_sdxl("CompVis/stable-diffusion-v1-4"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sha256),         cmocka_unit_test(test_repo_ids), cmocka_unit_test(test_settings_from_environment),
      cmocka_unit_test(test_select_files),   cmocka_unit_test(test_cache_layout), cmocka_unit_test(test_model_card),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
