#include "image/animation.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>

#ifdef BIOESP_HAVE_GIF
#include <gif_lib.h>
#endif
#ifdef BIOESP_HAVE_VIDEO
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}
#endif

#include "core/error.h"
#include "core/strings.h"
#include "io/file.h"

namespace bioesp::image {

namespace {

// A fresh temporary beside `path` (created empty, so no other writer takes its name) that the
// encoders open by name; `ext` lets FFmpeg see the format.
std::string temp_beside(const std::string& path, const std::string& ext) {
  std::string name;
  ::close(io::create_temporary(path, ext, &name));
  return name;
}

void publish(const std::string& tmp, const std::string& path) {
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail(BIOESP_ERR_IO, "cannot write " + path);
  }
}

// Median cut over a 5-bit-per-channel histogram.
struct Box {
  std::array<int, 3> lo{0, 0, 0}, hi{31, 31, 31};
  uint64_t count = 0;
};

int bin(const uint8_t* p) { return (p[0] >> 3) << 10 | (p[1] >> 3) << 5 | (p[2] >> 3); }

}  // namespace

Quantized quantize(const std::vector<Image>& frames) {
  // Counts and colour sums per bin: palette entries are means of the real colours, not bin centres.
  std::vector<uint64_t> hist(32768, 0);
  std::vector<std::array<uint64_t, 3>> sums(32768, {0, 0, 0});
  for (const auto& f : frames)
    for (size_t i = 0; i + 2 < f.pixels.size(); i += f.channels) {
      const int k = bin(&f.pixels[i]);
      ++hist[k];
      for (int c = 0; c < 3; ++c) sums[k][c] += f.pixels[i + c];
    }
  auto count_in = [&](const Box& b) {
    uint64_t n = 0;
    for (int r = b.lo[0]; r <= b.hi[0]; ++r)
      for (int g = b.lo[1]; g <= b.hi[1]; ++g)
        for (int c = b.lo[2]; c <= b.hi[2]; ++c) n += hist[r << 10 | g << 5 | c];
    return n;
  };
  auto shrink = [&](Box& b) {  // to the bins actually used
    std::array<int, 3> lo{31, 31, 31}, hi{0, 0, 0};
    for (int r = b.lo[0]; r <= b.hi[0]; ++r)
      for (int g = b.lo[1]; g <= b.hi[1]; ++g)
        for (int c = b.lo[2]; c <= b.hi[2]; ++c)
          if (hist[r << 10 | g << 5 | c]) {
            lo = {std::min(lo[0], r), std::min(lo[1], g), std::min(lo[2], c)};
            hi = {std::max(hi[0], r), std::max(hi[1], g), std::max(hi[2], c)};
          }
    if (lo[0] <= hi[0]) b.lo = lo, b.hi = hi;
    b.count = count_in(b);
  };
  std::vector<Box> boxes(1);
  shrink(boxes[0]);
  while (boxes.size() < 256) {
    // Split the box with the most pixels × widest side along that side, at its weighted median.
    int best = -1, axis = 0;
    double score = 0;
    for (size_t i = 0; i < boxes.size(); ++i) {
      const Box& b = boxes[i];
      for (int a = 0; a < 3; ++a) {
        const int width = b.hi[a] - b.lo[a];
        if (width > 0 && static_cast<double>(b.count) * width > score) score = static_cast<double>(b.count) * width, best = static_cast<int>(i), axis = a;
      }
    }
    if (best < 0) break;
    Box& b = boxes[best];
    std::vector<uint64_t> plane(32, 0);
    for (int r = b.lo[0]; r <= b.hi[0]; ++r)
      for (int g = b.lo[1]; g <= b.hi[1]; ++g)
        for (int c = b.lo[2]; c <= b.hi[2]; ++c) plane[axis == 0 ? r : axis == 1 ? g : c] += hist[r << 10 | g << 5 | c];
    uint64_t half = b.count / 2, run = 0;
    int cut = b.lo[axis];
    for (int v = b.lo[axis]; v < b.hi[axis]; ++v) {
      run += plane[v];
      cut = v;
      if (run >= half) break;
    }
    Box other = b;
    b.hi[axis] = cut;
    other.lo[axis] = cut + 1;
    shrink(b);
    shrink(other);
    boxes.push_back(other);
  }
  Quantized q;
  for (const Box& b : boxes) {
    double sum[3] = {0, 0, 0}, n = 0;
    for (int r = b.lo[0]; r <= b.hi[0]; ++r)
      for (int g = b.lo[1]; g <= b.hi[1]; ++g)
        for (int c = b.lo[2]; c <= b.hi[2]; ++c) {
          const int k = r << 10 | g << 5 | c;
          for (int ch = 0; ch < 3; ++ch) sum[ch] += static_cast<double>(sums[k][ch]);
          n += static_cast<double>(hist[k]);
        }
    for (double s : sum) q.palette.push_back(static_cast<uint8_t>(n > 0 ? std::lround(s / n) : 0));
  }
  while (q.palette.size() < 256 * 3) q.palette.push_back(0);
  // Each used bin's nearest palette colour.
  std::vector<int16_t> nearest(32768, -1);
  for (const auto& f : frames) {
    std::vector<uint8_t> idx(static_cast<size_t>(f.width) * f.height);
    for (size_t i = 0, p = 0; p < idx.size(); ++p, i += f.channels) {
      const int key = bin(&f.pixels[i]);
      if (nearest[key] < 0) {  // from the bin's mean colour
        const double n = static_cast<double>(hist[key]);
        const int r = static_cast<int>(sums[key][0] / n), g = static_cast<int>(sums[key][1] / n), c = static_cast<int>(sums[key][2] / n);
        int best = 0, dist = 1 << 30;
        for (size_t k = 0; k < boxes.size(); ++k) {
          const int dr = r - q.palette[3 * k], dg = g - q.palette[3 * k + 1], db = c - q.palette[3 * k + 2];
          const int d = dr * dr + dg * dg + db * db;
          if (d < dist) dist = d, best = static_cast<int>(k);
        }
        nearest[key] = static_cast<int16_t>(best);
      }
      idx[p] = static_cast<uint8_t>(nearest[key]);
    }
    q.indices.push_back(std::move(idx));
  }
  return q;
}

namespace {

#ifdef BIOESP_HAVE_GIF
void write_gif(const std::vector<Image>& frames, const std::string& path, const AnimationOptions& o) {
  const Quantized q = quantize(frames);
  const std::string tmp = temp_beside(path, ".gif");
  int err = 0;
  GifFileType* gif = EGifOpenFileName(tmp.c_str(), false, &err);
  if (!gif) fail(BIOESP_ERR_IO, "cannot write " + path + ": " + GifErrorString(err));
  auto bad = [&](const char* what) {
    EGifCloseFile(gif, &err);
    std::remove(tmp.c_str());
    fail(BIOESP_ERR_IO, std::string("cannot write ") + path + " (" + what + "; disk full?)");
  };
  std::vector<GifColorType> colors(256);
  for (int i = 0; i < 256; ++i) colors[i] = {q.palette[3 * i], q.palette[3 * i + 1], q.palette[3 * i + 2]};
  ColorMapObject* map = GifMakeMapObject(256, colors.data());
  EGifSetGifVersion(gif, true);
  const int w = static_cast<int>(frames[0].width), h = static_cast<int>(frames[0].height);
  const bool ok = EGifPutScreenDesc(gif, w, h, 8, 0, map) == GIF_OK;
  GifFreeMapObject(map);
  if (!ok) bad("header");
  if (o.loop) {  // NETSCAPE2.0: repeat forever
    const uint8_t loop[3] = {1, 0, 0};
    if (EGifPutExtensionLeader(gif, APPLICATION_EXT_FUNC_CODE) != GIF_OK ||
        EGifPutExtensionBlock(gif, 11, "NETSCAPE2.0") != GIF_OK || EGifPutExtensionBlock(gif, 3, loop) != GIF_OK ||
        EGifPutExtensionTrailer(gif) != GIF_OK)
      bad("loop extension");
  }
  GraphicsControlBlock gcb{};
  gcb.DisposalMode = DISPOSE_DO_NOT;
  gcb.DelayTime = std::max(1, static_cast<int>(std::lround(100.0 / o.fps)));
  gcb.TransparentColor = NO_TRANSPARENT_COLOR;
  GifByteType ext[4];
  EGifGCBToExtension(&gcb, ext);
  for (const auto& idx : q.indices) {
    if (EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, 4, ext) != GIF_OK || EGifPutImageDesc(gif, 0, 0, w, h, false, nullptr) != GIF_OK)
      bad("frame");
    for (int y = 0; y < h; ++y)
      if (EGifPutLine(gif, const_cast<GifPixelType*>(idx.data() + static_cast<size_t>(y) * w), w) != GIF_OK) bad("pixels");
  }
  if (EGifCloseFile(gif, &err) != GIF_OK) {
    std::remove(tmp.c_str());
    fail(BIOESP_ERR_IO, "cannot write " + path + ": " + GifErrorString(err));
  }
  publish(tmp, path);
}
#endif

#ifdef BIOESP_HAVE_VIDEO
std::string av_error(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, buf, sizeof buf);
  return buf;
}

void write_video(const std::vector<Image>& frames, const std::string& path, const std::string& format,
                 const AnimationOptions& o) {
  const int w = static_cast<int>(frames[0].width), h = static_cast<int>(frames[0].height);
  if (w % 2 || h % 2) fail(BIOESP_ERR_INVALID_ARGUMENT, "video frames need even width and height");
  const std::string tmp = temp_beside(path, "." + format);
  AVFormatContext* fmt = nullptr;
  AVCodecContext* ctx = nullptr;
  SwsContext* sws = nullptr;
  AVFrame* frame = nullptr;
  AVPacket* pkt = nullptr;
  bool opened = false;
  auto cleanup = [&] {
    if (opened) avio_closep(&fmt->pb);
    av_packet_free(&pkt);
    av_frame_free(&frame);
    sws_freeContext(sws);
    avcodec_free_context(&ctx);
    avformat_free_context(fmt);
  };
  auto bad = [&](const std::string& what, int code) {
    cleanup();
    std::remove(tmp.c_str());
    fail(code == AVERROR(ENOSPC) || code == AVERROR(EIO) ? BIOESP_ERR_IO : BIOESP_ERR_UNSUPPORTED,
         path + ": " + what + (code ? ": " + av_error(code) : ""));
  };
  int rc = avformat_alloc_output_context2(&fmt, nullptr, format == "mp4" ? "mp4" : "webm", tmp.c_str());
  if (rc < 0 || !fmt) bad("no " + format + " muxer in this FFmpeg", rc);
  const AVCodec* codec = nullptr;
  for (const char* name : format == "mp4" ? std::vector<const char*>{"libx264", "h264", "mpeg4"}
                                          : std::vector<const char*>{"libvpx-vp9", "libvpx", "libaom-av1"})
    if ((codec = avcodec_find_encoder_by_name(name))) break;
  if (!codec) bad("no " + format + " video encoder in this FFmpeg", 0);
  ctx = avcodec_alloc_context3(codec);
  const AVRational rate = av_d2q(o.fps, 1000);
  ctx->width = w, ctx->height = h;
  ctx->time_base = av_inv_q(rate);
  ctx->framerate = rate;
  ctx->pix_fmt = AV_PIX_FMT_YUV420P;
  ctx->gop_size = 12;
  const int crf = std::clamp(51 - o.quality / 2, 0, 51);  // quality 80 → 11 (x264) / VP9's scale alike
  av_opt_set_int(ctx->priv_data, "crf", crf, 0);
  if (format == "webm") ctx->bit_rate = 0;
  if (fmt->oformat->flags & AVFMT_GLOBALHEADER) ctx->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  if ((rc = avcodec_open2(ctx, codec, nullptr)) < 0) bad("cannot open the encoder", rc);
  AVStream* stream = avformat_new_stream(fmt, nullptr);
  if (!stream) bad("cannot add a stream", 0);
  avcodec_parameters_from_context(stream->codecpar, ctx);
  stream->time_base = ctx->time_base;
  if ((rc = avio_open(&fmt->pb, tmp.c_str(), AVIO_FLAG_WRITE)) < 0) bad("cannot open the file", rc);
  opened = true;
  if ((rc = avformat_write_header(fmt, nullptr)) < 0) bad("cannot write the header", rc);
  sws = sws_getContext(w, h, AV_PIX_FMT_RGB24, w, h, AV_PIX_FMT_YUV420P, SWS_BICUBIC, nullptr, nullptr, nullptr);
  frame = av_frame_alloc();
  pkt = av_packet_alloc();
  frame->format = AV_PIX_FMT_YUV420P, frame->width = w, frame->height = h;
  if (!sws || !frame || !pkt || av_frame_get_buffer(frame, 0) < 0) bad("out of memory", 0);
  auto drain = [&] {
    while ((rc = avcodec_receive_packet(ctx, pkt)) == 0) {
      av_packet_rescale_ts(pkt, ctx->time_base, stream->time_base);
      pkt->stream_index = stream->index;
      if ((rc = av_interleaved_write_frame(fmt, pkt)) < 0) bad("cannot write a frame", rc);
    }
    if (rc != AVERROR(EAGAIN) && rc != AVERROR_EOF) bad("encoding failed", rc);
  };
  std::vector<uint8_t> rgb(static_cast<size_t>(w) * h * 3);
  for (size_t i = 0; i < frames.size(); ++i) {
    const Image& f = frames[i];
    for (size_t p = 0; p < static_cast<size_t>(w) * h; ++p) std::memcpy(&rgb[3 * p], &f.pixels[p * f.channels], 3);
    const uint8_t* src[1] = {rgb.data()};
    const int stride[1] = {3 * w};
    if (av_frame_make_writable(frame) < 0) bad("out of memory", 0);
    sws_scale(sws, src, stride, 0, h, frame->data, frame->linesize);
    frame->pts = static_cast<int64_t>(i);
    if ((rc = avcodec_send_frame(ctx, frame)) < 0) bad("encoding failed", rc);
    drain();
  }
  avcodec_send_frame(ctx, nullptr);
  drain();
  if ((rc = av_write_trailer(fmt)) < 0) bad("cannot finish the file", rc);
  cleanup();
  publish(tmp, path);
}
#endif

}  // namespace

void save_animation(const std::vector<Image>& frames, const std::string& path, const AnimationOptions& o) {
  if (frames.empty()) fail(BIOESP_ERR_INVALID_ARGUMENT, "no frames");
  if (!(o.fps > 0 && o.fps <= 240)) fail(BIOESP_ERR_INVALID_ARGUMENT, "fps must be in (0, 240]");
  for (const auto& f : frames)
    if (f.width != frames[0].width || f.height != frames[0].height || f.channels < 3)
      fail(BIOESP_ERR_INVALID_ARGUMENT, "animation frames must share one size and be RGB");
  const std::string lower = to_lower(path);
  if (ends_with(lower, ".gif")) {
#ifdef BIOESP_HAVE_GIF
    return write_gif(frames, path, o);
#else
    fail(BIOESP_ERR_UNSUPPORTED, "bioesp was built without giflib: no GIF output");
#endif
  }
  if (ends_with(lower, ".mp4") || ends_with(lower, ".webm")) {
#ifdef BIOESP_HAVE_VIDEO
    return write_video(frames, path, ends_with(lower, ".mp4") ? "mp4" : "webm", o);
#else
    fail(BIOESP_ERR_UNSUPPORTED, "bioesp was built without FFmpeg's libraries: no MP4/WebM output");
#endif
  }
  const auto dot = path.find_last_of('.'), slash = path.find_last_of('/');
  if (dot != std::string::npos && (slash == std::string::npos || dot > slash) && !io::is_directory(path))
    fail(BIOESP_ERR_INVALID_ARGUMENT, path + ": animations are .gif, .mp4, .webm or a folder of PNG frames");
  io::make_directories(path);
  char name[32];
  for (size_t i = 0; i < frames.size(); ++i) {
    std::snprintf(name, sizeof name, "/frame-%04zu.png", i);
    write_png(path + name, frames[i]);
  }
}

}  // namespace bioesp::image
