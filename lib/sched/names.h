// The schedulers by name, declared without LibTorch so that the options table (which the C ABI,
// the command line, the bindings and the studio read) shows the one list the registry builds
// from (registry.cpp).
#pragma once

#include <string>
#include <vector>

namespace bioesp::sched {

// Every name make_scheduler takes, in the order lists show them: pndm, ddim, euler, euler_a,
// dpmpp_2m, dpmpp_2m_karras, unipc, ddpm, lcm, tcd.
const std::vector<std::string>& scheduler_names();

}  // namespace bioesp::sched
