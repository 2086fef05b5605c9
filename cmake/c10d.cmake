# What this LibTorch offers for training across processes (lib/train/distributed.cpp), found by
# compiling and linking small programs against it:
#   BIOESP_C10D       1: Gloo process groups are process groups (LibTorch 1.x);
#                     2: they are backends of a c10d::ProcessGroup built with options (2.0 – 2.4);
#                     3: the same, built without options (later 2.x); unset: no c10d with Gloo
#                     (Debian needs libgloo-dev for the headers ProcessGroupGloo.hpp includes).
#   BIOESP_NCCL       ProcessGroupNCCL is there (a CUDA LibTorch).
include(CheckCXXSourceCompiles)
include(CMakePushCheckState)

set(_c10d_head "
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
int main() {
  auto store = c10::make_intrusive<c10d::TCPStore>(\"127.0.0.1\", c10d::TCPStoreOptions{});
  auto gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(store, 0, 1, c10d::ProcessGroupGloo::Options::create());
")
set(_c10d_wrap "
  pg->setBackend(c10::DeviceType::CPU, c10d::ProcessGroup::BackendType::GLOO, gloo);
  pg->setDefaultBackend(c10d::ProcessGroup::BackendType::GLOO);
  return pg->getSize();
}")

cmake_push_check_state(RESET)
set(CMAKE_REQUIRED_QUIET ON)
set(CMAKE_REQUIRED_FLAGS "${TORCH_CXX_FLAGS} -std=c++17")
set(CMAKE_REQUIRED_DEFINITIONS -DUSE_C10D_GLOO)
set(CMAKE_REQUIRED_INCLUDES ${TORCH_INCLUDE_DIRS})
set(CMAKE_REQUIRED_LIBRARIES ${TORCH_LIBRARIES})
check_cxx_source_compiles("${_c10d_head}
  c10::intrusive_ptr<c10d::ProcessGroup> pg = gloo;
  return pg->getSize();
}" BIOESP_C10D_STYLE_1)
if(NOT BIOESP_C10D_STYLE_1)
  check_cxx_source_compiles("${_c10d_head}
  auto pg = c10::make_intrusive<c10d::ProcessGroup>(store, 0, 1, c10::make_intrusive<c10d::ProcessGroup::Options>(\"gloo\"));
  ${_c10d_wrap}" BIOESP_C10D_STYLE_2)
endif()
if(NOT BIOESP_C10D_STYLE_1 AND NOT BIOESP_C10D_STYLE_2)
  check_cxx_source_compiles("${_c10d_head}
  auto pg = c10::make_intrusive<c10d::ProcessGroup>(store, 0, 1);
  ${_c10d_wrap}" BIOESP_C10D_STYLE_3)
endif()
foreach(_style 1 2 3)
  if(BIOESP_C10D_STYLE_${_style})
    set(BIOESP_C10D ${_style})
  endif()
endforeach()
if(BIOESP_C10D)
  set(CMAKE_REQUIRED_DEFINITIONS -DUSE_C10D_GLOO -DUSE_C10D_NCCL)
  check_cxx_source_compiles("
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
int main() {
  auto store = c10::make_intrusive<c10d::TCPStore>(\"127.0.0.1\", c10d::TCPStoreOptions{});
  auto nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, 0, 1, c10d::ProcessGroupNCCL::Options::create());
  return nccl->getSize();
}" BIOESP_NCCL)
endif()
cmake_pop_check_state()
if(BIOESP_C10D)
  if(BIOESP_NCCL)
    message(STATUS "bioesp distributed training: c10d with Gloo and NCCL (style ${BIOESP_C10D})")
  else()
    message(STATUS "bioesp distributed training: c10d with Gloo (style ${BIOESP_C10D}); no NCCL")
  endif()
else()
  message(STATUS "bioesp distributed training: off (no c10d with Gloo in this LibTorch; on Debian install libgloo-dev)")
endif()
