// The zip container of torch.save files: LibTorch's PyTorchStreamReader validates the archive and
// extracts data.pkl and any compressed record; stored records (all that torch.save writes) stay
// in the file and are read when needed. Every size is checked against the zip directory first.
#include <caffe2/serialize/inline_container.h>

#include <cstring>

#include "core/error.h"
#include "core/strings.h"
#include "io/checkpoint.h"
#include "io/zip.h"

namespace bioesp::io {
namespace {

// The reader reads through the same checked file. Errors cannot cross miniz's C frames: a short
// read makes the reader fail instead, and the message is kept for the caller.
class FileAdapter : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit FileAdapter(std::shared_ptr<const ReadFile> f) : f_(std::move(f)) {}
  size_t size() const override { return static_cast<size_t>(f_->size()); }
  size_t read(uint64_t pos, void* buf, size_t n, const char*) const override {
    if (pos >= f_->size()) return 0;
    n = static_cast<size_t>(std::min<uint64_t>(n, f_->size() - pos));
    try {
      f_->read(pos, buf, n);
      return n;
    } catch (const Error& e) {
      error_ = e.what();
      return 0;
    }
  }
  const std::string& error() const { return error_; }

 private:
  std::shared_ptr<const ReadFile> f_;
  mutable std::string error_;
};

// "archive/" for "archive/data.pkl": the folder torch.save puts every record in.
std::string archive_prefix(const std::map<std::string, ZipRecord>& records) {
  for (const auto& [name, r] : records)
    if (ends_with(name, "/data.pkl") && name.find('/') == name.size() - 9) return name.substr(0, name.size() - 8);
  return "";
}

}  // namespace

bool has_zip_magic(const std::string& path) {
  auto f = open_file(path);
  char m[4] = {};
  if (f->size() < 4) return false;
  f->read(0, m, 4);
  return std::memcmp(m, "PK\x03\x04", 4) == 0;
}

WeightSet read_torch_zip(const std::string& path) {
  auto file = open_file(path);
  auto adapter = std::make_shared<FileAdapter>(file);
  try {
    caffe2::serialize::PyTorchStreamReader reader(adapter);
    if (!reader.hasRecord("data.pkl"))
      fail(BIOESP_ERR_FORMAT, path + ": zip archive has no data.pkl: not a torch.save checkpoint");
    const auto records = read_zip_directory(*file);
    const std::string prefix = archive_prefix(records);
    // A record's bytes, its claimed size checked before anything is allocated.
    auto record = [&](const std::string& name, uint64_t limit) {
      auto it = records.find(prefix + name);
      if (it == records.end()) fail(BIOESP_ERR_FORMAT, path + ": storage record " + name + " is missing");
      const ZipRecord& r = it->second;
      if (r.size > limit)
        fail(BIOESP_ERR_FORMAT, path + ": record " + name + " of " + std::to_string(r.size) + " bytes is larger than the " +
                                    std::to_string(limit) + " accepted");
      if (!r.stored && r.size / kMaxZipExpansion > r.compressed)
        fail(BIOESP_ERR_FORMAT, path + ": compressed record " + name + " claims " + std::to_string(r.size) + " bytes from " +
                                    std::to_string(r.compressed) + ", more than " + std::to_string(kMaxZipExpansion) +
                                    " times its size (a zip bomb?)");
      Tensor t;
      t.name = name;
      t.dtype = DType::U8;
      t.nbytes = static_cast<size_t>(r.size);
      if (r.stored) {
        t.file = file;
        t.offset = r.data;
        return t;
      }
      auto [ptr, size] = reader.getRecord(name);
      auto holder = std::make_shared<at::DataPtr>(std::move(ptr));
      t.data = static_cast<const uint8_t*>(holder->get());
      t.nbytes = size;
      t.owner = holder;
      return t;
    };
    Tensor pkl = record("data.pkl", kMaxPickleBytes);
    std::vector<uint8_t> pickle_bytes(pkl.nbytes);
    read_bytes(pkl, pickle_bytes.data());
    auto result = pickle::load(pickle_bytes.data(), pickle_bytes.size(), path);
    StorageGetter get = [&](const std::string& key) { return record("data/" + key, UINT64_MAX); };
    return tensors_from_pickle(result, get, path);
  } catch (const c10::Error& e) {
    std::string why = adapter->error().empty() ? e.what_without_backtrace() : adapter->error();
    fail(BIOESP_ERR_FORMAT, path + ": not a readable PyTorch zip checkpoint: " + why);
  }
}

}  // namespace bioesp::io
