#include "hub/model_card.h"

#include <set>
#include <sstream>

#include "core/strings.h"

namespace bioesp::hub {

namespace {

// A YAML scalar in single quotes (quotes doubled), safe for any prompt.
std::string yaml(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "''";
    else if (c == '\n' || c == '\r') out += ' ';
    else out += c;
  }
  return out + "'";
}

// Markdown text: no line breaks, no characters that start markup in a list item.
std::string md(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\n' || c == '\r') out += ' ';
    else if (c == '*' || c == '_' || c == '[' || c == ']' || c == '<' || c == '>' || c == '`' || c == '|') out += std::string("\\") + c;
    else out += c;
  }
  return out;
}

std::string get(const std::map<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? "" : it->second;
}

}  // namespace

bool names_sdxl(const std::string& base_model) {
  const std::string b = to_lower(base_model);
  return b.find("stable-diffusion-xl") != std::string::npos || b.find("sdxl") != std::string::npos;
}

std::string base_license(const std::string& base_model) {
  const std::string b = to_lower(base_model);
  if (names_sdxl(b) || b.find("stable-diffusion-2") != std::string::npos) return "openrail++";
  if (b.find("compvis/") != std::string::npos || b.find("stable-diffusion-v1") != std::string::npos ||
      b.find("runwayml/") != std::string::npos)
    return "creativeml-openrail-m";
  return "other";
}

std::string model_card(const CardInput& in) {
  const std::string prompt = get(in.metadata, "bioesp.prompt");
  std::set<std::string> licenses;
  bool share_alike = false;
  for (const auto& j : in.manifest) {
    std::string l = j.value("license", "");
    if (l.empty()) continue;
    licenses.insert(l);
    share_alike = share_alike || to_lower(l).find("by-sa") != std::string::npos;
  }

  std::ostringstream o;
  o << "---\n";
  if (!in.base_model.empty()) o << "base_model: " << in.base_model << "\n";
  // SDXL's license binds its derivatives, so an SDXL model of unknown base is openrail++ too.
  const std::string license = base_license(in.base_model);
  o << "license: " << (in.sdxl && license == "other" ? "openrail++" : license) << "\n";
  o << "library_name: diffusers\n";
  o << "pipeline_tag: text-to-image\n";
  const char* family = in.sdxl ? "stable-diffusion-xl" : "stable-diffusion";
  o << "tags:\n- text-to-image\n- " << family << "\n- " << family << "-diffusers\n- diffusers\n";
  if (in.lora) o << "- lora\n";
  o << "- dreambooth\n- bioesp\n";
  if (!prompt.empty()) o << "instance_prompt: " << yaml(prompt) << "\n";
  if (!in.samples.empty()) {
    o << "widget:\n";
    for (const auto& s : in.samples) o << "- text: " << yaml(prompt) << "\n  output:\n    url: " << yaml(s) << "\n";
  }
  o << "---\n\n";

  o << "# " << in.repo << "\n\n";
  o << (in.lora ? "A DreamBooth-LoRA" : "A DreamBooth fine-tune");
  if (!in.base_model.empty()) o << " of [" << in.base_model << "](https://huggingface.co/" << in.base_model << ")";
  if (in.sdxl) o << (in.base_model.empty() ? " of Stable Diffusion XL" : " (Stable Diffusion XL)");
  o << ", trained with [bioesp](https://github.com/bioesp/bioesp)";
  if (!in.manifest.empty()) o << " on " << in.manifest.size() << " openly licensed images";
  o << ".";
  if (!prompt.empty()) o << " The instance prompt is `" << prompt << "`.";
  o << "\n\n";

  if (!in.samples.empty()) {
    o << "## Samples\n\n";
    for (const auto& s : in.samples) o << "![sample](" << s << ")\n";
    o << "\n";
  }

  o << "## Use\n\nWith bioesp:\n\n```sh\nbioesp generate";
  if (!in.base_model.empty()) o << " --model " << (in.lora ? in.base_model : in.repo);
  else if (!in.lora) o << " --model " << in.repo;
  if (in.lora) o << " --lora " << in.repo;
  o << " --prompt \"" << (prompt.empty() ? "…" : prompt) << "\"\n```\n\n";
  const char* pipeline = in.sdxl ? "StableDiffusionXLPipeline" : "StableDiffusionPipeline";
  o << "With diffusers:\n\n```python\nimport torch\nfrom diffusers import " << pipeline << "\n\n";
  if (in.lora) {
    o << "pipe = " << pipeline << ".from_pretrained(\"" << (in.base_model.empty() ? "BASE_MODEL" : in.base_model) << "\")\n";
    o << "pipe.load_lora_weights(\"" << in.repo << "\")\n";
  } else {
    o << "pipe = " << pipeline << ".from_pretrained(\"" << in.repo << "\")\n";
  }
  o << "image = pipe(\"" << (prompt.empty() ? "…" : prompt) << "\").images[0]\n```\n\n";

  const std::pair<const char*, const char*> settings[] = {
      {"bioesp.steps", "steps"}, {"bioesp.rank", "LoRA rank"}, {"bioesp.alpha", "LoRA alpha"},
      {"bioesp.learning_rate", "learning rate"}, {"bioesp.lr_scheduler", "schedule"},
      {"bioesp.batch_size", "batch size (with accumulation)"}, {"bioesp.resolution", "resolution"},
      {"bioesp.mixed_precision", "mixed precision"}, {"bioesp.vae", "VAE (in place of the model's)"},
      {"bioesp.text_encoder", "text encoder trained"},
      {"bioesp.seed", "seed"}, {"bioesp.dataset", "dataset fingerprint"}, {"bioesp.version", "bioesp version"}};
  bool any = false;
  for (const auto& [key, label] : settings) {
    std::string v = get(in.metadata, key);
    if (v.empty()) continue;
    if (!any) o << "## Training\n\n| setting | value |\n| --- | --- |\n";
    any = true;
    o << "| " << label << " | " << md(v) << " |\n";
  }
  if (any) o << "\n";

  o << "## Data and credits\n\n";
  if (in.manifest.empty()) {
    o << "The training images were not published with a bioesp dataset manifest, so they are not listed here.\n";
  } else {
    o << "The model was trained on these images. Each is used under its license; the authors are credited as the "
         "licenses require.\n\n";
    for (const auto& j : in.manifest) {
      const std::string title = j.value("title", j.value("file", "")), author = j.value("author", ""),
                        license = j.value("license", ""), license_url = j.value("license_url", ""),
                        page = j.value("page_url", "");
      o << "- **" << md(title) << "** by " << (author.empty() ? "unknown author" : md(author)) << ", "
        << (license.empty() ? "license unknown" : md(license));
      if (!license_url.empty()) o << " (" << license_url << ")";
      if (!page.empty()) o << ", " << page;
      o << "\n";
    }
    o << "\nLicenses: ";
    bool first = true;
    for (const auto& l : licenses) o << (first ? "" : ", ") << md(l), first = false;
    o << ".\n";
    if (share_alike)
      o << "\nSome images are CC BY-SA (share-alike): where this model is an adaptation of them, it and its own "
           "adaptations must be shared under the same license, with these credits kept.\n";
  }
  return o.str();
}

}  // namespace bioesp::hub
