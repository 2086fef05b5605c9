#include "io/checkpoint.h"

#include <cstring>
#include <map>
#include <set>

#include "core/error.h"

namespace bioesp::io {
namespace {

using pickle::Kind;
using pickle::Object;

struct Storage {
  Tensor bytes;
  uint64_t copied = 0;  // bytes of non-contiguous views materialised from it so far
};

struct Walker {
  const pickle::Result& r;
  const StorageGetter& storage;
  const std::string& what;
  WeightSet out;
  std::set<std::string> names;
  std::map<std::string, Storage> storages;

  const Object& obj(size_t i) const { return r.objects[i]; }

  Storage& storage_of(const std::string& key) {
    auto it = storages.find(key);
    if (it == storages.end()) it = storages.emplace(key, Storage{storage(key)}).first;
    return it->second;
  }

  Tensor make_tensor(const std::string& name, const pickle::TensorRef& ref) {
    const pickle::StorageRef& s = obj(ref.storage).storage;
    const std::string where = what + ": tensor '" + name + "'";
    Storage& st = storage_of(s.key);
    const int64_t esize = static_cast<int64_t>(dtype_size(s.dtype));
    if (static_cast<uint64_t>(s.numel) > st.bytes.nbytes / esize)
      fail(BIOESP_ERR_FORMAT, where + ": storage record data/" + s.key + " holds " +
                                  std::to_string(st.bytes.nbytes) + " bytes, fewer than its " +
                                  std::to_string(s.numel) + " elements");
    if (ref.offset < 0 || ref.offset > s.numel)
      fail(BIOESP_ERR_FORMAT, where + ": storage offset " + std::to_string(ref.offset) + " outside a storage of " +
                                  std::to_string(s.numel));
    const int64_t numel = checked_numel(ref.shape, where);
    const size_t nbytes = static_cast<size_t>(checked_mul(numel, esize, where));
    // The view's bytes from its first element: n of them (bounded by the storage, checked below).
    const size_t first = static_cast<size_t>(ref.offset * esize);
    auto from_first = [&](size_t n) {
      Tensor t = byte_range(st.bytes, first, n);
      t.name = name;
      t.dtype = s.dtype;
      t.shape = ref.shape;
      return t;
    };
    if (numel == 0) return from_first(0);
    // Extent of the view inside the storage, and whether it is contiguous.
    bool contiguous = true;
    int64_t expect = 1, last = ref.offset;
    for (size_t d = ref.shape.size(); d-- > 0;) {
      if (ref.stride[d] < 0) fail(BIOESP_ERR_FORMAT, where + ": negative stride");
      if (ref.shape[d] > 1 && ref.stride[d] != expect) contiguous = false;
      expect = checked_mul(expect, ref.shape[d], where);
      if (ref.stride[d] > 0 && ref.shape[d] - 1 > (INT64_MAX - last) / ref.stride[d])
        fail(BIOESP_ERR_FORMAT, where + ": view overflows");
      last += (ref.shape[d] - 1) * ref.stride[d];
    }
    if (last >= s.numel)
      fail(BIOESP_ERR_FORMAT, where + ": view reaches element " + std::to_string(last) +
                                  " of a storage of " + std::to_string(s.numel));
    if (contiguous) return from_first(nbytes);
    if (nbytes > st.bytes.nbytes - st.copied)
      fail(BIOESP_ERR_FORMAT, where + ": its view of storage data/" + s.key + " would copy " + std::to_string(nbytes) +
                                  " bytes out of a storage of " + std::to_string(st.bytes.nbytes) +
                                  (st.copied ? " (after " + std::to_string(st.copied) + " for other views)" : std::string()) +
                                  ": a view may not expand its storage (stride 0)");
    st.copied += nbytes;
    return gather(from_first(static_cast<size_t>((last - ref.offset + 1) * esize)), ref);
  }

  // Copies a strided view out of `span` (its storage from the view's first element on).
  static Tensor gather(Tensor span, const pickle::TensorRef& ref) {
    std::vector<uint8_t> src(span.nbytes);
    read_bytes(span, src.data());
    const size_t esize = dtype_size(span.dtype);
    const int64_t numel = span.numel();
    auto buf = std::shared_ptr<uint8_t[]>(new uint8_t[static_cast<size_t>(numel) * esize]);
    std::vector<int64_t> idx(ref.shape.size(), 0);
    for (int64_t i = 0; i < numel; ++i) {
      int64_t off = 0;
      for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * ref.stride[d];
      std::memcpy(buf.get() + i * esize, src.data() + off * esize, esize);
      for (size_t d = idx.size(); d-- > 0;) {
        if (++idx[d] < ref.shape[d]) break;
        idx[d] = 0;
      }
    }
    Tensor t = std::move(span);
    t.data = buf.get();
    t.owner = buf;
    t.file = nullptr;
    t.offset = 0;
    t.nbytes = static_cast<size_t>(numel) * esize;
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
