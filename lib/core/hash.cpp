#include "core/hash.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "core/error.h"

namespace bioesp {

namespace {

uint32_t rol(uint32_t v, int s) { return (v << s) | (v >> (32 - s)); }
uint32_t ror(uint32_t v, int s) { return (v >> s) | (v << (32 - s)); }
uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

// Both hashes take 64-byte blocks and pad alike: 0x80, zeros, the message length in bits.
template <class Block>
void feed(uint8_t* buf, size_t& used, uint64_t& bytes, const void* data, size_t n, Block block) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  bytes += n;
  while (n > 0) {
    size_t take = std::min(n, 64 - used);
    std::memcpy(buf + used, p, take);
    used += take, p += take, n -= take;
    if (used == 64) block(buf), used = 0;
  }
}

template <class Block>
std::string finish(uint8_t* buf, size_t& used, uint64_t& bytes, const uint32_t* state, int words, Block block) {
  const uint64_t bits = bytes * 8;
  const uint8_t one = 0x80, zero = 0;
  feed(buf, used, bytes, &one, 1, block);
  while (used != 56) feed(buf, used, bytes, &zero, 1, block);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
  feed(buf, used, bytes, len, 8, block);
  std::string out;
  char tmp[9];
  for (int i = 0; i < words; ++i) std::snprintf(tmp, sizeof tmp, "%08x", state[i]), out += tmp;
  return out;
}

template <class H>
std::string file_digest(const std::string& path, H h, const std::string& prefix) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail(BIOESP_ERR_IO, "cannot open " + path);
  h.update(prefix.data(), prefix.size());
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) h.update(buf, n);
  const bool bad = std::ferror(f);
  std::fclose(f);
  if (bad) fail(BIOESP_ERR_IO, "cannot read " + path);
  return h.hex();
}

const uint32_t kSha256K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

}  // namespace

Sha1::Sha1() : h_{0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u} {}

void Sha1::block(const uint8_t* p) {
  uint32_t w[80];
  for (int i = 0; i < 16; ++i) w[i] = be32(p + 4 * i);
  for (int i = 16; i < 80; ++i) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
  uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4];
  for (int i = 0; i < 80; ++i) {
    uint32_t f, k;
    if (i < 20) f = (b & c) | (~b & d), k = 0x5A827999u;
    else if (i < 40) f = b ^ c ^ d, k = 0x6ED9EBA1u;
    else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDCu;
    else f = b ^ c ^ d, k = 0xCA62C1D6u;
    uint32_t t = rol(a, 5) + f + e + k + w[i];
    e = d, d = c, c = rol(b, 30), b = a, a = t;
  }
  h_[0] += a, h_[1] += b, h_[2] += c, h_[3] += d, h_[4] += e;
}

void Sha1::update(const void* data, size_t n) {
  feed(buf_, used_, bytes_, data, n, [this](const uint8_t* p) { block(p); });
}

std::string Sha1::hex() {
  return finish(buf_, used_, bytes_, h_, 5, [this](const uint8_t* p) { block(p); });
}

Sha256::Sha256()
    : h_{0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au, 0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u} {}

void Sha256::block(const uint8_t* p) {
  uint32_t w[64];
  for (int i = 0; i < 16; ++i) w[i] = be32(p + 4 * i);
  for (int i = 16; i < 64; ++i) {
    uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
  for (int i = 0; i < 64; ++i) {
    uint32_t t1 = h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + kSha256K[i] + w[i];
    uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
  }
  h_[0] += a, h_[1] += b, h_[2] += c, h_[3] += d, h_[4] += e, h_[5] += f, h_[6] += g, h_[7] += h;
}

void Sha256::update(const void* data, size_t n) {
  feed(buf_, used_, bytes_, data, n, [this](const uint8_t* p) { block(p); });
}

std::string Sha256::hex() {
  return finish(buf_, used_, bytes_, h_, 8, [this](const uint8_t* p) { block(p); });
}

std::string sha1_file(const std::string& path) { return file_digest(path, Sha1(), ""); }
std::string sha256_file(const std::string& path) { return file_digest(path, Sha256(), ""); }

static std::string blob_header(uint64_t size) { return "blob " + std::to_string(size) + std::string(1, '\0'); }

std::string git_blob_sha1_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail(BIOESP_ERR_IO, "cannot open " + path);
  std::fseek(f, 0, SEEK_END);
  const long size = std::ftell(f);
  std::fclose(f);
  if (size < 0) fail(BIOESP_ERR_IO, "cannot read " + path);
  return file_digest(path, Sha1(), blob_header(static_cast<uint64_t>(size)));
}

std::string git_blob_sha1(const std::string& bytes) {
  Sha1 h;
  std::string head = blob_header(bytes.size());
  h.update(head.data(), head.size());
  h.update(bytes.data(), bytes.size());
  return h.hex();
}

}  // namespace bioesp
