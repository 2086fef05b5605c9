#!/bin/sh
# Installs what bioesp needs on Debian 12 (run as root, or with sudo available).
set -eu
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build ccache pkg-config clang libclang-rt-14-dev \
  libtorch-dev nlohmann-json3-dev libcmocka-dev zlib1g-dev \
  libcurl4-openssl-dev libjpeg-dev libpng-dev python3 \
  libopenblas0-pthread >/dev/null
# libclang-rt-14-dev holds the fuzzer and sanitizer runtimes clang links (only recommended by clang).
# OpenBLAS becomes the libblas.so.3 alternative that Debian's LibTorch calls for matrix products
# (the reference BLAS it otherwise finds is some 30 times slower).
