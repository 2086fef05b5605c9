#include "models/loader.h"

#include <map>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/strings.h"
#include "models/layers.h"

namespace bioesp::models {

namespace {

torch::ScalarType scalar_type(io::DType t) {
  switch (t) {
    case io::DType::F32: return torch::kFloat32;
    case io::DType::F16: return torch::kFloat16;
    case io::DType::BF16: return torch::kBFloat16;
    case io::DType::F64: return torch::kFloat64;
    case io::DType::I64: return torch::kInt64;
    case io::DType::I32: return torch::kInt32;
    case io::DType::I16: return torch::kInt16;
    case io::DType::I8: return torch::kInt8;
    case io::DType::U8: return torch::kUInt8;
    case io::DType::Bool: return torch::kBool;
  }
  fail(BIOESP_ERR_INTERNAL, "unknown dtype");
}

// The names of the Linear and Conv2d weights under `m`: those WeightScope's as_file keeps in
// their file's 16-bit type.
std::set<std::string> file_typed_weights(torch::nn::Module& m) {
  std::set<std::string> names;
  for (const auto& item : m.named_modules())
    if (stores_weight(*item.value())) names.insert(item.key().empty() ? "weight" : item.key() + ".weight");
  return names;
}

void list(std::ostringstream& o, const char* label, const std::vector<std::string>& names) {
  if (names.empty()) return;
  o << "\n  " << names.size() << " " << label << ":";
  for (const auto& n : names) o << "\n    " << n;
}

}  // namespace

io::Tensor from_torch(const std::string& name, const torch::Tensor& t) {
  auto cpu = std::make_shared<torch::Tensor>(t.detach().to(torch::kCPU).contiguous());
  io::Tensor out;
  out.name = name;
  bool found = false;
  for (io::DType d : {io::DType::F32, io::DType::F16, io::DType::BF16, io::DType::F64, io::DType::I64, io::DType::I32,
                      io::DType::I16, io::DType::I8, io::DType::U8, io::DType::Bool})
    if (scalar_type(d) == cpu->scalar_type()) out.dtype = d, found = true;
  if (!found) fail(BIOESP_ERR_UNSUPPORTED, name + ": no file dtype for this tensor");
  out.shape.assign(cpu->sizes().begin(), cpu->sizes().end());
  out.data = static_cast<const uint8_t*>(cpu->data_ptr());
  out.nbytes = cpu->nbytes();
  out.owner = cpu;
  return out;
}

torch::Tensor to_torch(const io::Tensor& t) {
  std::vector<int64_t> shape(t.shape.begin(), t.shape.end());
  auto options = torch::TensorOptions().dtype(scalar_type(t.dtype));
  if (t.data || !t.file) return torch::from_blob(const_cast<uint8_t*>(t.data), shape, options);
  auto out = torch::empty(shape, options);
  io::read_bytes(t, out.data_ptr());
  return out;
}

std::string LoadReport::describe(const std::string& what) const {
  std::ostringstream o;
  o << what << ": the weights do not fit the architecture";
  list(o, "missing", missing);
  list(o, "unexpected", unexpected);
  list(o, "with other shapes (file vs model)", mismatched);
  return o.str();
}

std::string shape_text(at::IntArrayRef s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

LoadReport load_state(torch::nn::Module& m, const io::WeightSet& set, const std::string& component,
                      const std::string& what, bool strict) {
  std::map<std::string, torch::Tensor> expected;
  for (const auto& p : m.named_parameters()) expected.emplace(p.key(), p.value());
  for (const auto& b : m.named_buffers()) expected.emplace(b.key(), b.value());
  std::map<std::string, const io::Tensor*> given;
  LoadReport report;
  for (const auto& t : set.tensors) {
    if (t.component != component) continue;
    if (ends_with(t.name, "position_ids")) continue;  // a buffer transformers may save
    std::string name = t.name;
    if (!expected.count(name) && expected.count("text_model." + name)) name = "text_model." + name;
    if (!expected.count(name)) {
      report.unexpected.push_back(t.name);
      continue;
    }
    given[name] = &t;
  }
  for (const auto& [name, param] : expected) {
    auto it = given.find(name);
    if (it == given.end()) {
      report.missing.push_back(name);
      continue;
    }
    std::vector<int64_t> shape(it->second->shape.begin(), it->second->shape.end());
    if (param.sizes() != at::IntArrayRef(shape))
      report.mismatched.push_back(name + ": " + shape_text(shape) + " vs " + shape_text(param.sizes()));
  }
  if (strict && !report.clean()) fail(BIOESP_ERR_MISMATCH, report.describe(what));
  const auto kept = weights_as_file() ? file_typed_weights(m) : std::set<std::string>{};
  torch::NoGradGuard no_grad;
  for (auto& [name, param] : expected) {
    auto it = given.find(name);
    if (it == given.end() || param.sizes() != at::IntArrayRef(std::vector<int64_t>(it->second->shape.begin(), it->second->shape.end())))
      continue;
    const io::Tensor& src = *it->second;
    if (!io::dtype_is_float(src.dtype) && src.dtype != io::DType::I64)
      fail(BIOESP_ERR_FORMAT, what + ": tensor " + src.name + " has dtype " + io::dtype_name(src.dtype));
    const bool half = src.dtype == io::DType::F16 || src.dtype == io::DType::BF16;
    if (half && param.scalar_type() == torch::kFloat32 && kept.count(name))
      param.set_data(torch::empty(param.sizes(), param.options().dtype(scalar_type(src.dtype))));
    // Straight from the file into the parameter when nothing needs converting.
    if (!src.data && param.is_cpu() && param.is_contiguous() && param.scalar_type() == scalar_type(src.dtype))
      io::read_bytes(src, param.data_ptr());
    else
      param.copy_(to_torch(src));
  }
  return report;
}

std::vector<std::pair<std::string, std::vector<int64_t>>> expected_tensors(torch::nn::Module& m) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  for (const auto& p : m.named_parameters()) out.emplace_back(p.key(), p.value().sizes().vec());
  return out;
}

}  // namespace bioesp::models
