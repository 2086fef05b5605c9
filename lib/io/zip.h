// The central directory of a zip archive (zip64 included): what each record claims to hold and
// where its bytes lie. LibTorch's reader extracts records, but tells neither the size it is about
// to allocate nor where a stored record's bytes are; this reads both, before anything is
// allocated or extracted.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "io/file.h"

namespace bioesp::io {

struct ZipRecord {
  bool stored = false;     // method 0: the bytes lie in the file as they are
  uint64_t compressed = 0; // bytes in the archive
  uint64_t size = 0;       // bytes once extracted
  uint64_t data = 0;       // offset of the (possibly compressed) bytes in the file
};

// Records by name. Throws a format error naming the file for a directory that is malformed or
// points outside the file.
std::map<std::string, ZipRecord> read_zip_directory(const ReadFile& f);

// The largest central directory read (about 600,000 records).
constexpr uint64_t kMaxZipDirectory = 64u << 20;

// How many times its compressed size a deflated record may expand to (zip bombs reach 1000×;
// weights compress to about 1.1×, and torch.save stores records uncompressed).
constexpr uint64_t kMaxZipExpansion = 32;

}  // namespace bioesp::io
