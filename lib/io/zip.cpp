#include "io/zip.h"

#include <algorithm>
#include <vector>

#include "core/error.h"

namespace bioesp::io {
namespace {

constexpr uint32_t kLocal = 0x04034b50, kCentral = 0x02014b50, kEnd = 0x06054b50;
constexpr uint32_t kEnd64 = 0x06064b50, kLocator64 = 0x07064b50;

// Little-endian fields of a byte buffer, bounds-checked.
struct Fields {
  const std::vector<uint8_t>& b;
  const std::string& what;
  uint64_t get(size_t at, int n) const {
    if (at > b.size() || static_cast<size_t>(n) > b.size() - at)
      fail(BIOESP_ERR_FORMAT, what + ": zip directory is truncated");
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | b[at + i];
    return v;
  }
};

std::vector<uint8_t> bytes_at(const ReadFile& f, uint64_t at, uint64_t n) {
  if (at > f.size() || n > f.size() - at) fail(BIOESP_ERR_FORMAT, f.path() + ": zip directory points past the end of the file");
  std::vector<uint8_t> b(static_cast<size_t>(n));
  f.read(at, b.data(), b.size());
  return b;
}

// Where the central directory lies and how many entries it has, from the end records.
struct Directory {
  uint64_t offset = 0, size = 0, entries = 0;
};

Directory find_directory(const ReadFile& f) {
  const std::string& what = f.path();
  const uint64_t tail_size = std::min<uint64_t>(f.size(), 22 + 0xFFFF);
  const uint64_t tail_at = f.size() - tail_size;
  std::vector<uint8_t> tail = bytes_at(f, tail_at, tail_size);
  Fields t{tail, what};
  size_t end = std::string::npos;
  for (size_t i = tail.size() >= 22 ? tail.size() - 22 + 1 : 0; i-- > 0;)
    if (t.get(i, 4) == kEnd) {
      end = i;
      break;
    }
  if (end == std::string::npos) fail(BIOESP_ERR_FORMAT, what + ": no zip end-of-directory record");
  Directory d{t.get(end + 16, 4), t.get(end + 12, 4), t.get(end + 10, 2)};
  if (d.offset != 0xFFFFFFFF && d.entries != 0xFFFF && d.size != 0xFFFFFFFF) return d;
  // zip64: a locator just before the end record points at the zip64 end record.
  if (end < 20 || t.get(end - 20, 4) != kLocator64) fail(BIOESP_ERR_FORMAT, what + ": zip64 archive without its locator");
  std::vector<uint8_t> rec = bytes_at(f, t.get(end - 20 + 8, 8), 56);
  Fields r{rec, what};
  if (r.get(0, 4) != kEnd64) fail(BIOESP_ERR_FORMAT, what + ": zip64 end record is missing");
  return {r.get(48, 8), r.get(40, 8), r.get(32, 8)};
}

// A central entry's sizes and local header offset, with zip64's extra field where they overflow.
void read_zip64_extra(const Fields& c, size_t extra, size_t extra_len, ZipRecord& r, uint64_t& local) {
  for (size_t at = extra; at + 4 <= extra + extra_len;) {
    uint64_t id = c.get(at, 2), len = c.get(at + 2, 2);
    if (id == 0x0001) {
      size_t p = at + 4;
      if (r.size == 0xFFFFFFFF) r.size = c.get(p, 8), p += 8;
      if (r.compressed == 0xFFFFFFFF) r.compressed = c.get(p, 8), p += 8;
      if (local == 0xFFFFFFFF) local = c.get(p, 8);
      return;
    }
    at += 4 + len;
  }
}

}  // namespace

std::map<std::string, ZipRecord> read_zip_directory(const ReadFile& f) {
  const std::string& what = f.path();
  Directory d = find_directory(f);
  if (d.size > kMaxZipDirectory)
    fail(BIOESP_ERR_FORMAT, what + ": zip directory of " + std::to_string(d.size) + " bytes, more than the " +
                                std::to_string(kMaxZipDirectory) + " read");
  std::vector<uint8_t> dir = bytes_at(f, d.offset, d.size);
  Fields c{dir, what};
  std::map<std::string, ZipRecord> out;
  size_t at = 0;
  for (uint64_t i = 0; i < d.entries; ++i) {
    if (c.get(at, 4) != kCentral) fail(BIOESP_ERR_FORMAT, what + ": malformed zip directory entry " + std::to_string(i));
    ZipRecord r;
    uint64_t method = c.get(at + 10, 2);
    r.compressed = c.get(at + 20, 4);
    r.size = c.get(at + 24, 4);
    size_t name_len = c.get(at + 28, 2), extra_len = c.get(at + 30, 2), comment_len = c.get(at + 32, 2);
    uint64_t local = c.get(at + 42, 4);
    if (at + 46 + name_len + extra_len > dir.size()) fail(BIOESP_ERR_FORMAT, what + ": zip directory is truncated");
    std::string name(reinterpret_cast<const char*>(dir.data() + at + 46), name_len);
    read_zip64_extra(c, at + 46 + name_len, extra_len, r, local);
    if (method != 0 && method != 8)
      fail(BIOESP_ERR_FORMAT, what + ": zip record " + name + " uses compression method " + std::to_string(method));
    r.stored = method == 0;
    if (r.stored && r.size != r.compressed) fail(BIOESP_ERR_FORMAT, what + ": stored zip record " + name + " has two sizes");
    std::vector<uint8_t> head = bytes_at(f, local, 30);
    Fields h{head, what};
    if (h.get(0, 4) != kLocal) fail(BIOESP_ERR_FORMAT, what + ": zip record " + name + " has no local header");
    r.data = local + 30 + h.get(26, 2) + h.get(28, 2);
    if (r.data > f.size() || r.compressed > f.size() - r.data)
      fail(BIOESP_ERR_FORMAT, what + ": zip record " + name + " runs past the end of the file");
    if (!out.emplace(name, r).second) fail(BIOESP_ERR_FORMAT, what + ": zip record " + name + " appears twice");
    at += 46 + name_len + extra_len + comment_len;
  }
  return out;
}

}  // namespace bioesp::io
