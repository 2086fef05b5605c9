#!/bin/sh
# Installs what bioesp needs on Debian 12 (run as root, or with sudo available).
set -eu
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build ccache pkg-config clang libclang-rt-14-dev \
  libtorch-dev libgloo-dev nlohmann-json3-dev libcmocka-dev zlib1g-dev \
  libcurl4-openssl-dev libjpeg-dev libpng-dev python3 \
  libopenblas0-openmp \
  swig python3-dev default-jdk-headless mono-mcs mono-runtime \
  libgif-dev libavformat-dev libavcodec-dev libswscale-dev libavutil-dev \
  libcpp-httplib-dev chromium godot3-server librsvg2-bin >/dev/null
# libgloo-dev: the Gloo headers LibTorch's ProcessGroupGloo.hpp includes (training across
# processes; Debian's LibTorch links the system libgloo).
# libclang-rt-14-dev holds the fuzzer and sanitizer runtimes clang links (only recommended by clang).
# OpenBLAS becomes the libblas.so.3 alternative that Debian's LibTorch calls for matrix products
# (the reference BLAS it otherwise finds is some 30 times slower), in its OpenMP build: it then runs
# on LibTorch's own OpenMP threads, where the pthreads build's pool spins beside them
# (lib/runtime/blas.h; a full-size 256 px step 1.9 s against 3.5 s on 2 cores).
# swig and the hosts' toolchains build and test the bindings (Python, Java, C#; Node uses the
# machine's nodejs and its headers in /usr/include/node).
# giflib and FFmpeg's libraries write animations (GIF, MP4, WebM).
# godot3-server (Godot 3.2.3, headless) runs the Godot module's test.
# librsvg2-bin (rsvg-convert) renders the embedded model's SVG emoji (scripts/embedded-model).
# cpp-httplib serves `bioesp studio`; its test drives Debian's Chromium with playwright-core
# (fetched from npm by tests/cli_studio.sh into the build folder).
# Where the pthreads build is installed too, it would stay the alternative (higher priority).
arch=$(gcc -dumpmachine)
for lib in libblas.so.3 liblapack.so.3 libopenblas.so.0; do
  alt=/usr/lib/$arch/openblas-openmp/$lib
  if [ -e "$alt" ]; then $SUDO update-alternatives --set "$lib-$arch" "$alt" >/dev/null; fi
done
