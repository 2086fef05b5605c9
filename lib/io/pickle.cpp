#include "io/pickle.h"

#include <cstring>
#include <unordered_map>

#include "core/error.h"

namespace bioesp::io::pickle {
namespace {

// Storage classes torch.save names in persistent ids.
bool storage_dtype(const std::string& name, DType* out) {
  static const std::pair<const char*, DType> kStorages[] = {
      {"torch.FloatStorage", DType::F32},   {"torch.HalfStorage", DType::F16},
      {"torch.BFloat16Storage", DType::BF16}, {"torch.DoubleStorage", DType::F64},
      {"torch.LongStorage", DType::I64},    {"torch.IntStorage", DType::I32},
      {"torch.ShortStorage", DType::I16},   {"torch.CharStorage", DType::I8},
      {"torch.ByteStorage", DType::U8},     {"torch.BoolStorage", DType::Bool},
      {"torch.UntypedStorage", DType::U8},
  };
  for (const auto& [n, t] : kStorages)
    if (name == n) { *out = t; return true; }
  return false;
}

// Inert callables torch.save emits (torch's own weights_only list has the same ones).
const char* const kAllowedCalls[] = {
    "collections.OrderedDict",      "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
    "_codecs.encode",               "torch.Size",
    "torch.device",
};

class Unpickler {
 public:
  Unpickler(const uint8_t* d, size_t n, const std::string& what) : start_(d), p_(d), end_(d + n), what_(what) {}

  Result run() {
    while (true) {
      uint8_t op = byte();
      if (op == '.') break;
      step(op);
    }
    if (stack_.size() != 1) bad("STOP with " + std::to_string(stack_.size()) + " values on the stack");
    Result r;
    r.root = stack_.back();
    r.objects = std::move(objs_);
    return r;
  }

 private:
  const uint8_t* start_;
  const uint8_t* p_;
  const uint8_t* end_;
  const std::string& what_;
  std::vector<Object> objs_;
  std::vector<size_t> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, size_t> memo_;
  std::unordered_map<size_t, std::unordered_map<std::string, size_t>> dict_index_;
  size_t references_ = 0;
  uint64_t text_ = 0;  // bytes of strings built, at most twice the pickle (memo'd text re-encoded)

  [[noreturn]] void bad(const std::string& msg) { fail(BIOESP_ERR_FORMAT, what_ + ": pickle: " + msg); }

  uint8_t byte() {
    if (p_ >= end_) bad("truncated");
    return *p_++;
  }
  const uint8_t* take(uint64_t n) {
    if (n > static_cast<uint64_t>(end_ - p_)) bad("truncated");
    const uint8_t* r = p_;
    p_ += n;
    return r;
  }
  uint64_t le(int n) {
    const uint8_t* b = take(n);
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | b[i];
    return v;
  }
  std::string line() {
    const uint8_t* s = p_;
    while (p_ < end_ && *p_ != '\n') ++p_;
    if (p_ >= end_) bad("truncated line");
    std::string r(reinterpret_cast<const char*>(s), p_ - s);
    ++p_;
    return r;
  }

  // Counts n more references against the limit.
  void refer(size_t n) {
    references_ += n;
    if (references_ > kMaxReferences)
      bad("more than " + std::to_string(kMaxReferences) + " references (stack, memo and container entries)");
  }
  size_t make(Object o) {
    if (objs_.size() >= kMaxObjects) bad("more than " + std::to_string(kMaxObjects) + " objects");
    text_ += o.s.size();
    if (text_ > 2 * static_cast<uint64_t>(end_ - start_) + 4096) bad("its strings add up to more than twice its size");
    objs_.push_back(std::move(o));
    return objs_.size() - 1;
  }
  size_t make(Kind k) {
    Object o;
    o.kind = k;
    return make(std::move(o));
  }
  void push(size_t i) {
    refer(1);
    stack_.push_back(i);
  }
  size_t pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) bad("stack underflow");
    size_t v = stack_.back();
    stack_.pop_back();
    return v;
  }
  size_t top() {
    if (stack_.empty()) bad("stack underflow");
    return stack_.back();
  }
  std::vector<size_t> pop_mark() {
    if (marks_.empty()) bad("no MARK");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<size_t> items(stack_.begin() + m, stack_.end());
    stack_.resize(m);
    return items;
  }
  Object& at(size_t i) { return objs_[i]; }
  Object& expect(size_t i, Kind k, const char* what) {
    if (objs_[i].kind != k) bad(std::string("expected ") + what);
    return objs_[i];
  }
  int64_t as_int(size_t i, const char* what) { return expect(i, Kind::Int, what).i; }
  std::vector<int64_t> int_tuple(size_t i, const char* what) {
    std::vector<int64_t> r;
    for (size_t e : expect(i, Kind::Tuple, what).items) r.push_back(as_int(e, what));
    return r;
  }

  void set_items(size_t dict, const std::vector<size_t>& kv) {
    if (kv.size() % 2) bad("odd number of SETITEMS values");
    expect(dict, Kind::Dict, "a dict for SETITEM(S)");
    auto& index = dict_index_[dict];
    refer(kv.size());
    for (size_t i = 0; i < kv.size(); i += 2) {
      // Keys are strings in practice: a repeated one replaces the value; others keep identity.
      std::string key = at(kv[i]).kind == Kind::Str ? "s" + at(kv[i]).s : "o" + std::to_string(kv[i]);
      auto [it, fresh] = index.emplace(key, objs_[dict].entries.size());
      if (fresh) objs_[dict].entries.emplace_back(kv[i], kv[i + 1]);
      else objs_[dict].entries[it->second].second = kv[i + 1];
    }
  }
  void append(size_t list, const std::vector<size_t>& v) {
    Object& l = expect(list, Kind::List, "a list for APPEND(S)");
    refer(v.size());
    l.items.insert(l.items.end(), v.begin(), v.end());
  }

  size_t tuple(std::vector<size_t> items) {
    Object o;
    o.kind = Kind::Tuple;
    o.items = std::move(items);
    return make(std::move(o));
  }

  size_t global(const std::string& module, const std::string& name) {
    std::string full = module + "." + name;
    DType dt;
    bool ok = storage_dtype(full, &dt);
    for (const char* a : kAllowedCalls) ok = ok || full == a;
    if (!ok)
      fail(BIOESP_ERR_FORMAT, what_ + ": refused to load global '" + full +
                                  "': only tensors and plain containers are accepted, nothing is executed");
    Object o;
    o.kind = Kind::Global;
    o.s = full;
    return make(std::move(o));
  }

  size_t persistent_load(size_t pid) {
    const Object& t = expect(pid, Kind::Tuple, "a persistent id tuple");
    if (t.items.size() != 5 || at(t.items[0]).kind != Kind::Str || at(t.items[0]).s != "storage")
      bad("unsupported persistent id");
    const Object& type = expect(t.items[1], Kind::Global, "a storage type");
    Object o;
    o.kind = Kind::Storage;
    if (!storage_dtype(type.s, &o.storage.dtype)) bad("'" + type.s + "' is not a storage type");
    o.storage.key = expect(t.items[2], Kind::Str, "a storage key").s;
    o.storage.numel = as_int(t.items[4], "a storage size");
    if (o.storage.numel < 0) bad("negative storage size");
    return make(std::move(o));
  }

  size_t reduce(size_t callable, size_t args_i) {
    const std::string fn = expect(callable, Kind::Global, "a callable for REDUCE").s;
    const std::vector<size_t> args = expect(args_i, Kind::Tuple, "an argument tuple").items;
    if (fn == "collections.OrderedDict") {
      if (!args.empty()) bad("OrderedDict with arguments");
      return make(Kind::Dict);
    }
    if (fn == "torch._utils._rebuild_tensor_v2") {
      if (args.size() < 6 || args.size() > 7) bad("_rebuild_tensor_v2 takes 6 or 7 arguments");
      Object o;
      o.kind = Kind::Tensor;
      expect(args[0], Kind::Storage, "a storage");
      o.tensor.storage = args[0];
      o.tensor.offset = as_int(args[1], "a storage offset");
      o.tensor.shape = int_tuple(args[2], "a size tuple");
      o.tensor.stride = int_tuple(args[3], "a stride tuple");
      if (o.tensor.shape.size() != o.tensor.stride.size()) bad("size and stride differ in length");
      return make(std::move(o));
    }
    if (fn == "torch._utils._rebuild_parameter" || fn == "torch._utils._rebuild_parameter_with_state") {
      if (args.empty()) bad("_rebuild_parameter without arguments");
      expect(args[0], Kind::Tensor, "a tensor");
      return args[0];
    }
    if (fn == "_codecs.encode") {  // protocol 2 writes bytes as _codecs.encode(text, "latin1")
      if (args.size() != 2) bad("_codecs.encode takes 2 arguments");
      Object o;
      o.kind = Kind::Bytes;
      std::string text = expect(args[0], Kind::Str, "text").s;
      for (size_t i = 0; i < text.size(); ++i) {  // UTF-8 code points below 256 → bytes
        unsigned char c = text[i];
        if (c < 0x80) o.s += static_cast<char>(c);
        else if ((c & 0xe0) == 0xc0 && i + 1 < text.size())
          o.s += static_cast<char>(((c & 0x1f) << 6) | (text[++i] & 0x3f));
        else bad("_codecs.encode of a non-latin1 string");
      }
      return make(std::move(o));
    }
    if (fn == "torch.Size") {
      if (args.size() != 1) bad("torch.Size takes 1 argument");
      return args[0];
    }
    if (fn == "torch.device") {
      Object o;
      o.kind = Kind::Str;
      for (size_t a : args) o.s += (at(a).kind == Kind::Str ? at(a).s : std::to_string(at(a).i));
      return make(std::move(o));
    }
    if (fn.find("Storage") != std::string::npos) bad("storage types cannot be called");
    bad("cannot call '" + fn + "'");
  }

  void memo_put(uint64_t i) {
    refer(1);
    memo_[i] = top();
  }
  size_t memo_get(uint64_t i) {
    auto it = memo_.find(i);
    if (it == memo_.end()) bad("memo key " + std::to_string(i) + " missing");
    return it->second;
  }

  size_t str(const uint8_t* b, uint64_t n, Kind k) {
    Object o;
    o.kind = k;
    o.s.assign(reinterpret_cast<const char*>(b), n);
    return make(std::move(o));
  }

  size_t integer(int64_t v) {
    Object o;
    o.kind = Kind::Int;
    o.i = v;
    return make(std::move(o));
  }

  void step(uint8_t op) {
    switch (op) {
      case 0x80: {  // PROTO
        uint8_t v = byte();
        if (v > 5) bad("unsupported protocol " + std::to_string(v));
        return;
      }
      case 0x95: take(8); return;  // FRAME: framing is transparent here
      case '(': refer(1), marks_.push_back(stack_.size()); return;
      case '}': push(make(Kind::Dict)); return;
      case ']': push(make(Kind::List)); return;
      case ')': push(tuple({})); return;
      case 'N': push(make(Kind::None)); return;
      case 0x88: case 0x89: {  // NEWTRUE, NEWFALSE
        Object o;
        o.kind = Kind::Bool;
        o.i = op == 0x88;
        push(make(std::move(o)));
        return;
      }
      case 'J': push(integer(static_cast<int32_t>(le(4)))); return;
      case 'K': push(integer(byte())); return;
      case 'M': push(integer(static_cast<int64_t>(le(2)))); return;
      case 0x8a: {  // LONG1
        uint8_t n = byte();
        if (n > 8) bad("integer too large");
        const uint8_t* b = take(n);
        uint64_t v = 0;
        for (int i = n - 1; i >= 0; --i) v = (v << 8) | b[i];
        if (n > 0 && n < 8 && (b[n - 1] & 0x80)) v |= ~0ull << (8 * n);  // sign-extend
        push(integer(static_cast<int64_t>(v)));
        return;
      }
      case 'G': {  // BINFLOAT, big-endian double
        const uint8_t* b = take(8);
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | b[i];
        Object o;
        o.kind = Kind::Float;
        std::memcpy(&o.f, &bits, 8);
        push(make(std::move(o)));
        return;
      }
      case 'X': { uint64_t n = le(4); push(str(take(n), n, Kind::Str)); return; }
      case 0x8c: { uint64_t n = byte(); push(str(take(n), n, Kind::Str)); return; }
      case 0x8d: { uint64_t n = le(8); push(str(take(n), n, Kind::Str)); return; }
      case 'U': { uint64_t n = byte(); push(str(take(n), n, Kind::Str)); return; }  // SHORT_BINSTRING
      case 'T': { uint64_t n = le(4); push(str(take(n), n, Kind::Str)); return; }   // BINSTRING
      case 'C': { uint64_t n = byte(); push(str(take(n), n, Kind::Bytes)); return; }
      case 'B': { uint64_t n = le(4); push(str(take(n), n, Kind::Bytes)); return; }
      case 0x8e: { uint64_t n = le(8); push(str(take(n), n, Kind::Bytes)); return; }
      case 'q': memo_put(byte()); return;
      case 'r': memo_put(le(4)); return;
      case 0x94: memo_put(memo_.size()); return;  // MEMOIZE
      case 'h': push(memo_get(byte())); return;
      case 'j': push(memo_get(le(4))); return;
      case 't': push(tuple(pop_mark())); return;
      case 0x85: { size_t a = pop(); push(tuple({a})); return; }
      case 0x86: { size_t b = pop(), a = pop(); push(tuple({a, b})); return; }
      case 0x87: { size_t c = pop(), b = pop(), a = pop(); push(tuple({a, b, c})); return; }
      case 'l': { Object o; o.kind = Kind::List; o.items = pop_mark(); push(make(std::move(o))); return; }
      case 'd': { auto kv = pop_mark(); size_t d = make(Kind::Dict); set_items(d, kv); push(d); return; }
      case 's': { size_t v = pop(), k = pop(); set_items(top(), {k, v}); return; }
      case 'u': { auto kv = pop_mark(); set_items(top(), kv); return; }
      case 'a': { size_t v = pop(); append(top(), {v}); return; }
      case 'e': { auto v = pop_mark(); append(top(), v); return; }
      case 'c': {  // GLOBAL
        std::string module = line(), name = line();
        push(global(module, name));
        return;
      }
      case 0x93: {  // STACK_GLOBAL
        size_t n = pop(), m = pop();
        push(global(expect(m, Kind::Str, "a module name").s, expect(n, Kind::Str, "a global name").s));
        return;
      }
      case 'Q': push(persistent_load(pop())); return;  // BINPERSID
      case 'R': { size_t args = pop(), fn = pop(); push(reduce(fn, args)); return; }
      case 0x81: { size_t args = pop(), cls = pop(); push(reduce(cls, args)); return; }  // NEWOBJ
      case 'b': {  // BUILD: only the empty state torch attaches to OrderedDict-like objects
        size_t state = pop();
        const Object& s = at(state);
        bool empty = s.kind == Kind::None || (s.kind == Kind::Dict && s.entries.empty()) ||
                     (s.kind == Kind::Tuple && s.items.empty());
        if (!empty) bad("BUILD with state is not accepted");
        return;
      }
      case '0': pop(); return;  // POP
      case '1': pop_mark(); return;  // POP_MARK
      case '2': push(top()); return;  // DUP
      default: {
        char buf[64];
        std::snprintf(buf, sizeof buf, "opcode 0x%02x is not accepted", op);
        bad(buf);
      }
    }
  }
};

}  // namespace

Result load(const uint8_t* data, size_t size, const std::string& what) {
  return Unpickler(data, size, what).run();
}

}  // namespace bioesp::io::pickle
