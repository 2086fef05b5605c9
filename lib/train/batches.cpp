#include "train/batches.h"

#include <tuple>

#include "core/error.h"
#include "train/run.h"

namespace bioesp::train {

std::vector<int64_t> DataOrder::next(int64_t count, int64_t size) {
  const int64_t per_rank = share(size, world);
  std::vector<int64_t> out;
  while (static_cast<int64_t>(out.size()) < count) {
    if (position >= per_rank) ++epoch, position = 0;
    if (dealt_ != epoch) {
      at::Generator g = at::detail::createCPUGenerator(seed + static_cast<uint64_t>(epoch));
      auto perm = at::randperm(size, g, torch::kLong);
      const auto* p = perm.data_ptr<int64_t>();
      indices_.clear();
      for (int64_t i = rank; i < per_rank * world; i += world) indices_.push_back(p[i % size]);
      dealt_ = epoch;
    }
    out.push_back(indices_[static_cast<size_t>(position++)]);
  }
  return out;
}

Batches::Batches(const RunOptions& o, pipeline::StableDiffusion& sd, Trainer& tr, const std::vector<Example>& examples,
                 const std::vector<Example>& prior, const std::function<void(const char*, int, int)>& stage)
    : o_(o), sd_(sd), tr_(tr), examples_(examples), prior_(prior),
      varied_(o.tag_dropout > 0 || o.shuffle_tags || o.caption_dropout > 0) {
  if (o.resolution % sd.latent_factor())
    fail(BIOESP_ERR_INVALID_ARGUMENT, "resolution must be a multiple of " + std::to_string(sd.latent_factor()) + " for this VAE");
  latent_size_ = o.resolution / sd.latent_factor();
  channels_ = sd.vae()->config().latent_channels;
  if (!o.cache_latents) return;
  // The VAE posterior of each centre crop, once (and of its mirror image with flips).
  if (o.random_crop && o.log) o.log(BIOESP_LOG_WARNING, "cached latents fix each image's crop; random crop is off");
  for (auto* set : {&examples, &prior}) {
    auto& dst = set == &examples ? cached_ : cached_prior_;
    for (size_t i = 0; i < set->size(); ++i) {
      stage("cache-latents", static_cast<int>(i), static_cast<int>(set->size()));
      dst.push_back(encode((*set)[i]));
    }
  }
}

Batches::Cached Batches::encode(const Example& e) {
  at::Generator unused = at::detail::createCPUGenerator(0);
  Cached c;
  auto picture = pixels(e, o_.resolution, false, false, unused, &c.crop);
  auto post = tr_.encode(picture.unsqueeze(0));
  c.mean = post.first.cpu(), c.std = post.second.cpu();
  if (o_.flip) {
    post = tr_.encode(picture.flip({2}).unsqueeze(0));
    c.mirrored_mean = post.first.cpu(), c.mirrored_std = post.second.cpu();
    c.mirrored_crop = {c.crop.top, static_cast<int64_t>(e.image.width) - o_.resolution - c.crop.left};
  }
  return c;
}

std::pair<torch::Tensor, torch::Tensor> Batches::ids(const std::string& caption) {
  auto e = sd_.tokenizer().encode(caption);
  if (e.truncated && o_.log) o_.log(BIOESP_LOG_WARNING, "caption cut to the text encoder's 77 tokens; dropped: " + e.removed);
  auto first = torch::tensor(e.ids, torch::kLong);
  if (!sd_.sdxl()) return {first, {}};
  return {first, torch::tensor(sd_.tokenizer_2().encode(caption).ids, torch::kLong)};
}

// Frozen text encoders encode each caption once (varied captions, too many to keep, each time).
pipeline::PromptEmbeds Batches::embedding(const std::string& caption) {
  auto it = text_cache_.find(caption);
  if (it != text_cache_.end()) return it->second;
  torch::NoGradGuard no_grad;
  auto [first, second] = ids(caption);
  auto e = sd_.encode_tokens(first.unsqueeze(0), second.defined() ? second.unsqueeze(0) : second, 0);
  pipeline::PromptEmbeds h{e.embeds.squeeze(0), e.pooled.defined() ? e.pooled.squeeze(0) : e.pooled};
  return varied_ ? h : text_cache_[caption] = h;
}

void Batches::add_images(StepInputs& in, const std::vector<const Example*>& batch,
                         const std::vector<const Cached*>& cached, at::Generator& gen) {
  const int64_t B = static_cast<int64_t>(batch.size());
  std::vector<Crop> crops;
  if (o_.cache_latents) {
    std::vector<torch::Tensor> mean, std;
    for (const auto* c : cached) {
      // The same draw pixels() makes for a flip.
      const bool mirrored = o_.flip && at::rand({1}, gen).item<double>() < 0.5;
      mean.push_back(mirrored ? c->mirrored_mean : c->mean), std.push_back(mirrored ? c->mirrored_std : c->std);
      crops.push_back(mirrored ? c->mirrored_crop : c->crop);
    }
    auto eps = at::randn({B, channels_, latent_size_, latent_size_}, gen);
    in.latents = (torch::cat(mean) + torch::cat(std) * eps) * sd_.vae()->config().scaling_factor;
  } else {
    std::vector<torch::Tensor> px;
    for (const auto* e : batch) {
      crops.emplace_back();
      px.push_back(pixels(*e, o_.resolution, o_.random_crop, o_.flip, gen, &crops.back()));
    }
    in.pixel_values = torch::stack(px);
    in.vae_eps = at::randn({B, channels_, latent_size_, latent_size_}, gen);
  }
  if (!sd_.sdxl()) return;
  // A class picture takes its instance picture's time ids, as the script's collate_fn pairs them.
  const int64_t n = B - in.prior;
  std::vector<torch::Tensor> rows;
  for (int64_t i = 0; i < B; ++i) {
    const auto k = static_cast<size_t>(i < n ? i : i - n);
    rows.push_back(training_time_ids(static_cast<int>(batch[k]->original_width), static_cast<int>(batch[k]->original_height),
                                     crops[k].top, crops[k].left, o_.resolution));
  }
  in.time_ids = torch::cat(rows);
}

StepInputs Batches::next(DataOrder& data, DataOrder& prior_data, at::Generator& gen) {
  StepInputs in;
  std::vector<const Example*> batch;
  std::vector<const Cached*> cached;
  for (int64_t i : data.next(o_.batch, static_cast<int64_t>(examples_.size()))) {
    batch.push_back(&examples_[i]);
    if (o_.cache_latents) cached.push_back(&cached_[i]);
  }
  if (!prior_.empty()) {
    for (int64_t i : prior_data.next(o_.batch, static_cast<int64_t>(prior_.size()))) {
      batch.push_back(&prior_[i]);
      if (o_.cache_latents) cached.push_back(&cached_prior_[i]);
    }
    in.prior = o_.batch;
  }
  add_images(in, batch, cached, gen);
  const Setup& s = tr_.setup();
  if (s.vae) return in;
  const int64_t B = static_cast<int64_t>(batch.size());
  in.noise = at::randn({B, channels_, latent_size_, latent_size_}, gen);
  if (s.noise_offset > 0) in.noise = in.noise + s.noise_offset * at::randn({B, channels_, 1, 1}, gen);
  in.timesteps = at::randint(0, tr_.noise_schedule().config().num_train_timesteps, {B}, gen, torch::kLong);
  std::vector<std::string> captions;
  for (const auto* e : batch)
    captions.push_back(varied_ ? vary_caption(e->caption, o_.tag_dropout, o_.shuffle_tags, o_.caption_dropout, gen) : e->caption);
  std::vector<torch::Tensor> first, second;  // ids or embeddings; SDXL's second ids or pooled projections
  for (const auto& c : captions) {
    torch::Tensor a, b;
    if (s.train_text_encoder) {
      std::tie(a, b) = ids(c);
    } else {
      auto e = embedding(c);
      a = e.embeds, b = e.pooled;
    }
    first.push_back(a);
    if (b.defined()) second.push_back(b);
  }
  auto stacked = [](const std::vector<torch::Tensor>& v) { return v.empty() ? torch::Tensor() : torch::stack(v); };
  if (s.train_text_encoder) {
    in.input_ids = stacked(first), in.input_ids_2 = stacked(second);
  } else {
    in.encoder_hidden_states = stacked(first), in.pooled = stacked(second);
  }
  return in;
}

std::string vary_caption(const std::string& caption, double tag_dropout, bool shuffle, double caption_dropout,
                         at::Generator& gen) {
  auto draw = [&] { return at::rand({1}, gen).item<double>(); };
  if (caption_dropout > 0 && draw() < caption_dropout) return "";
  std::vector<std::string> tags;
  for (size_t start = 0; start <= caption.size();) {
    size_t comma = std::min(caption.find(',', start), caption.size());
    std::string t = caption.substr(start, comma - start);
    t.erase(0, t.find_first_not_of(' '));
    t.erase(t.find_last_not_of(' ') + 1);
    if (!t.empty()) tags.push_back(t);
    start = comma + 1;
  }
  if (tags.empty()) return caption;
  std::vector<std::string> kept;
  for (const auto& t : tags)
    if (!(tag_dropout > 0 && draw() < tag_dropout)) kept.push_back(t);
  if (kept.empty()) kept.push_back(tags[static_cast<size_t>(draw() * tags.size()) % tags.size()]);
  if (shuffle)
    for (size_t i = kept.size(); i > 1; --i) std::swap(kept[i - 1], kept[static_cast<size_t>(draw() * i) % i]);
  std::string out;
  for (const auto& t : kept) out += (out.empty() ? "" : ", ") + t;
  return out;
}

}  // namespace bioesp::train
