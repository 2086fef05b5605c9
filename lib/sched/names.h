// The schedulers by name: the one list the C ABI (bioesp_scheduler_name), the options table, the
// command line, the bindings and the studio show, and make_scheduler builds. No LibTorch here.
#pragma once

#include <string>
#include <vector>

namespace bioesp::sched {

// pndm, ddim, euler, euler_a, dpmpp_2m, dpmpp_2m_karras, unipc, ddpm.
const std::vector<std::string>& scheduler_names();

}  // namespace bioesp::sched
