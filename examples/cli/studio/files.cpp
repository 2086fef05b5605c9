#include "files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "strings.h"

namespace studio {

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = s[i];
    const int n = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : -1;
    if (n < 0 || (n > 0 && i + n >= s.size())) return false;  // a lead byte, then n more
    uint32_t cp = n == 0 ? c : c & (0x3f >> n);
    for (int k = 1; k <= n; ++k) {
      const unsigned char d = s[i + k];
      if ((d & 0xc0) != 0x80) return false;
      cp = cp << 6 | (d & 0x3f);
    }
    static const uint32_t least[] = {0, 0x80, 0x800, 0x10000};
    if (cp < least[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;  // overlong, surrogate
    i += n + 1;
  }
  return true;
}

bool safe_name(const std::string& s) {
  if (s.empty() || s.size() > 255 || s[0] == '.' || !valid_utf8(s)) return false;
  for (unsigned char c : s)
    if (c == '/' || c == '\\' || c < 0x20 || c == 0x7f) return false;
  return true;
}

fs::path confined(const fs::path& root, const std::string& rel) {
  std::stringstream ss(rel);
  std::string part;
  while (std::getline(ss, part, '/'))
    if (!safe_name(part)) return {};
  std::error_code ec;
  const fs::path real = fs::weakly_canonical(root / rel, ec);
  if (ec) return {};
  const fs::path base = fs::weakly_canonical(root, ec);
  if (ec) return {};
  const std::string r = real.string(), b = base.string() + "/";
  return r.compare(0, b.size(), b) == 0 ? real : fs::path{};
}

const char* media_type(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), ::tolower);
  if (e == ".png") return "image/png";
  if (e == ".jpg" || e == ".jpeg") return "image/jpeg";
  if (e == ".gif") return "image/gif";
  if (e == ".mp4") return "video/mp4";
  if (e == ".webm") return "video/webm";
  return nullptr;
}

bool is_picture(const fs::path& p) {
  const char* t = media_type(p);
  return t && (std::strcmp(t, "image/png") == 0 || std::strcmp(t, "image/jpeg") == 0);
}

void skip(json& skipped, const std::string& entry, const std::string& reason) {
  if (!skipped.is_array()) skipped = json::array();
  skipped.push_back(json{{"entry", entry}, {"reason", reason}});
}

std::vector<fs::path> listing(const fs::path& dir, bool folders, json& skipped) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& d : fs::directory_iterator(dir, ec)) {
    std::error_code kind;
    if (folders ? !d.is_directory(kind) : !d.is_regular_file(kind)) continue;
    const std::string name = d.path().filename().string();
    if (name[0] == '.') continue;
    if (safe_name(name)) out.push_back(d.path());
    else skip(skipped, name, say("not_utf8"));
  }
  std::sort(out.begin(), out.end());
  return out;
}

void write_atomically(const fs::path& path, const std::string& text) {
  std::string tmp = path.string() + ".tmp-XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) throw std::runtime_error("cannot write " + path.string() + ": " + std::strerror(errno));
  bool ok = true;
  for (size_t done = 0; ok && done < text.size();) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  ok = ok && ::fchmod(fd, 0644) == 0 && ::fsync(fd) == 0;
  const int saved = errno;
  ok = ::close(fd) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(ok ? errno : saved);
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot write " + path.string() + ": " + why);
  }
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string json_text(const json& j, int indent) { return j.dump(indent, ' ', false, json::error_handler_t::replace); }

json parse_json(const std::string& text) { return json::parse(text, nullptr, false); }
json read_json(const fs::path& path) { return parse_json(read_file(path)); }

}  // namespace studio
