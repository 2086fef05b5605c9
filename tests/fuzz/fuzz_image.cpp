// Any bytes as an image file: decoded by libpng or libjpeg (EXIF orientation included; half the
// inputs as prepare decodes, at a reduced JPEG scale when the header claims more than the pixel
// budget) and squared for training, or refused with an Error. run.sh caps single allocations, so
// a header claiming more than the budget that gets its buffer anyway is reported.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "core/error.h"
#include "dataset/prepare.h"
#include "image/image_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/bioesp-fuzz-image-" + std::to_string(getpid());
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    auto img = bioesp::image::read_image(path, /*reduce=*/size % 2);
    if (img.width * img.height < (1u << 20)) bioesp::dataset::square(img, 16, size % 3 == 0 ? "pad" : size % 3 == 1 ? "center" : "attention", {255, 255, 255});
  } catch (const bioesp::Error&) {
  }
  return 0;
}
