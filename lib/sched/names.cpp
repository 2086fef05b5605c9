#include "sched/names.h"

namespace bioesp::sched {

const std::vector<std::string>& scheduler_names() {
  static const std::vector<std::string> names = {"pndm", "ddim", "euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras", "unipc", "ddpm"};
  return names;
}

}  // namespace bioesp::sched
