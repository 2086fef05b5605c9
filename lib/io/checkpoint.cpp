#include "io/checkpoint.h"

#include <cstring>
#include <map>
#include <set>

#include "core/error.h"

namespace bioesp::io {
namespace {

using pickle::Kind;
using pickle::Object;

struct Walker {
  const pickle::Result& r;
  const StorageGetter& storage;
  const std::string& what;
  WeightSet out;
  std::set<std::string> names;
  std::map<std::string, StorageBytes> storages;

  const Object& obj(size_t i) const { return r.objects[i]; }

  Tensor make_tensor(const std::string& name, const pickle::TensorRef& ref) {
    const pickle::StorageRef& s = obj(ref.storage).storage;
    const std::string where = what + ": tensor '" + name + "'";
    auto it = storages.find(s.key);
    if (it == storages.end()) it = storages.emplace(s.key, storage(s.key)).first;
    const StorageBytes& bytes = it->second;
    size_t esize = dtype_size(s.dtype);
    if (static_cast<uint64_t>(s.numel) > bytes.size / esize)
      fail(BIOESP_ERR_FORMAT, where + ": storage record data/" + s.key + " holds " +
                                  std::to_string(bytes.size) + " bytes, fewer than its " +
                                  std::to_string(s.numel) + " elements");
    Tensor t;
    t.name = name;
    t.dtype = s.dtype;
    t.shape = ref.shape;
    int64_t numel = checked_numel(ref.shape, where);
    // Extent of the view inside the storage, and whether it is contiguous.
    bool contiguous = true;
    int64_t expect = 1, last = ref.offset;
    if (ref.offset < 0) fail(BIOESP_ERR_FORMAT, where + ": negative storage offset");
    for (size_t d = ref.shape.size(); d-- > 0;) {
      if (ref.stride[d] < 0) fail(BIOESP_ERR_FORMAT, where + ": negative stride");
      if (ref.shape[d] > 1 && ref.stride[d] != expect) contiguous = false;
      expect *= ref.shape[d];
      if (ref.shape[d] > 0) {
        if (ref.stride[d] > 0 && ref.shape[d] - 1 > (INT64_MAX - last) / ref.stride[d])
          fail(BIOESP_ERR_FORMAT, where + ": view overflows");
        last += (ref.shape[d] - 1) * ref.stride[d];
      }
    }
    if (numel > 0 && last >= s.numel)
      fail(BIOESP_ERR_FORMAT, where + ": view reaches element " + std::to_string(last) +
                                  " of a storage of " + std::to_string(s.numel));
    t.nbytes = static_cast<size_t>(numel) * esize;
    if (numel == 0 || contiguous) {
      t.data = bytes.data + ref.offset * esize;
      t.owner = bytes.owner;
      return t;
    }
    auto buf = std::shared_ptr<uint8_t[]>(new uint8_t[t.nbytes]);
    std::vector<int64_t> idx(ref.shape.size(), 0);
    for (int64_t i = 0; i < numel; ++i) {
      int64_t off = ref.offset;
      for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * ref.stride[d];
      std::memcpy(buf.get() + i * esize, bytes.data + off * esize, esize);
      for (size_t d = idx.size(); d-- > 0;) {
        if (++idx[d] < ref.shape[d]) break;
        idx[d] = 0;
      }
    }
    t.data = buf.get();
    t.owner = buf;
    return t;
  }

  // Depth-first over nested dicts, iteratively; `seen` stops cycles.
  void collect(size_t root, const std::string& prefix) {
    std::vector<std::pair<size_t, std::string>> todo{{root, prefix}};
    std::set<size_t> seen;
    while (!todo.empty()) {
      auto [i, name] = todo.back();
      todo.pop_back();
      const Object& o = obj(i);
      if (o.kind == Kind::Tensor) {
        if (!names.insert(name).second) fail(BIOESP_ERR_FORMAT, what + ": duplicate tensor name " + name);
        out.tensors.push_back(make_tensor(name, o.tensor));
      } else if (o.kind == Kind::Dict && seen.insert(i).second) {
        for (auto it = o.entries.rbegin(); it != o.entries.rend(); ++it) {
          const Object& k = obj(it->first);
          std::string key = k.kind == Kind::Str ? k.s : k.kind == Kind::Int ? std::to_string(k.i) : "";
          if (key.empty()) continue;
          todo.emplace_back(it->second, name.empty() ? key : name + "." + key);
        }
      }
    }
  }

  static bool scalar_text(const Object& o, std::string* out) {
    switch (o.kind) {
      case Kind::Int: *out = std::to_string(o.i); return true;
      case Kind::Bool: *out = o.i ? "true" : "false"; return true;
      case Kind::Float: { char b[32]; std::snprintf(b, sizeof b, "%.17g", o.f); *out = b; return true; }
      case Kind::Str: *out = o.s; return true;
      default: return false;
    }
  }

  void run() {
    const Object& root = obj(r.root);
    if (root.kind != Kind::Dict)
      fail(BIOESP_ERR_FORMAT, what + ": the checkpoint is not a dict of tensors");
    size_t state = r.root;
    for (const auto& [k, v] : root.entries)
      if (obj(k).kind == Kind::Str && obj(k).s == "state_dict" && obj(v).kind == Kind::Dict) state = v;
    collect(state, "");
    for (const auto& [k, v] : root.entries) {
      std::string text;
      if (obj(k).kind == Kind::Str && scalar_text(obj(v), &text)) out.metadata.emplace_back(obj(k).s, text);
    }
    out.sort();
  }
};

}  // namespace

WeightSet tensors_from_pickle(const pickle::Result& r, const StorageGetter& storage,
                              const std::string& what) {
  Walker w{r, storage, what, {}, {}, {}};
  w.out.format = BIOESP_FORMAT_PYTORCH_ZIP;
  w.run();
  return std::move(w.out);
}

}  // namespace bioesp::io
