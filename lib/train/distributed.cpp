#include "train/distributed.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <sstream>
#include <thread>

#include "core/error.h"

#ifdef BIOESP_C10D
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/comm.hpp>
#ifdef BIOESP_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#endif

namespace bioesp::train {

std::string distributed_backends() {
#if defined(BIOESP_C10D) && defined(BIOESP_NCCL)
  return "gloo, nccl";
#elif defined(BIOESP_C10D)
  return "gloo";
#else
  return "";
#endif
}

#ifdef BIOESP_C10D

namespace {

using Seconds = std::chrono::duration<double>;

#ifdef BIOESP_NCCL
constexpr bool kNccl = true;
#else
constexpr bool kNccl = false;
#endif

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }
std::string text(const std::vector<uint8_t>& b) { return {b.begin(), b.end()}; }

std::string key(const char* what, int rank) { return std::string("bioesp/") + what + "/" + std::to_string(rank); }

// The first line on which two settings texts differ, for the error that names it.
std::string difference(const std::string& a, const std::string& b) {
  std::istringstream x(a), y(b);
  for (std::string la, lb;;) {
    const bool more_a = static_cast<bool>(std::getline(x, la)), more_b = static_cast<bool>(std::getline(y, lb));
    if (!more_a && !more_b) return "";
    if (!more_a) la.clear();
    if (!more_b) lb.clear();
    if (la != lb) return "'" + la + "' here, '" + lb + "' on rank 0";
  }
}

// A process group for `o`'s backend over `store`, as torch.distributed builds one: Gloo on the
// devices GLOO_SOCKET_IFNAME names (else the host's address), or NCCL.
c10::intrusive_ptr<c10d::ProcessGroup> make_group(const c10::intrusive_ptr<c10d::Store>& store,
                                                  const DistributedOptions& o, bool nccl,
                                                  std::chrono::milliseconds timeout) {
  auto prefixed = c10::make_intrusive<c10d::PrefixStore>("bioesp/pg", store);
#if BIOESP_C10D == 1
  using Backend = c10d::ProcessGroup;
#else
  using Backend = c10d::Backend;
#endif
  c10::intrusive_ptr<Backend> backend;
#ifdef BIOESP_NCCL
  if (nccl) {
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(o.local_rank));
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = timeout;
    backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, o.rank, o.world_size, opts);
  }
#endif
  if (!nccl) {
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    std::istringstream names(ifname ? ifname : "");
    for (std::string n; std::getline(names, n, ',');)
      if (!n.empty()) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(n));
    if (opts->devices.empty()) opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    backend = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, o.rank, o.world_size, opts);
  }
#if BIOESP_C10D == 1
  return backend;
#else
  const auto type = nccl ? c10d::ProcessGroup::BackendType::NCCL : c10d::ProcessGroup::BackendType::GLOO;
#if BIOESP_C10D == 2
  auto pg = c10::make_intrusive<c10d::ProcessGroup>(
      store, o.rank, o.world_size, c10::make_intrusive<c10d::ProcessGroup::Options>(nccl ? "nccl" : "gloo", timeout));
#else
  auto pg = c10::make_intrusive<c10d::ProcessGroup>(store, o.rank, o.world_size);
#endif
  pg->setBackend(c10::DeviceType::CUDA, type, backend);
  if (!nccl) pg->setBackend(c10::DeviceType::CPU, type, backend);
  pg->setDefaultBackend(type);
  return pg;
#endif
}

}  // namespace

struct Group::Impl {
  DistributedOptions o;
  torch::Device device = torch::kCPU;  // where the collectives' tensors live (CUDA for NCCL)
  std::chrono::milliseconds timeout;
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  std::thread heartbeat;
  std::mutex m;
  std::condition_variable cv;
  bool stopping = false;
  int alone = 0, agreed = 0;  // rank0_alone and agree calls so far

  Impl(const DistributedOptions& opts, const torch::Device& model_device) : o(opts) {
    timeout = std::chrono::milliseconds(static_cast<int64_t>(o.timeout * 1000));
    const bool nccl = o.backend == "nccl" || (o.backend == "auto" && model_device.is_cuda() && kNccl);
    if (nccl && !kNccl)
      fail(BIOESP_ERR_UNSUPPORTED, "this build has no NCCL (its LibTorch lacks ProcessGroupNCCL): use the gloo backend");
    if (nccl && !model_device.is_cuda()) fail(BIOESP_ERR_INVALID_ARGUMENT, "the nccl backend needs CUDA; on the CPU use gloo");
    if (nccl) device = model_device;
    join();
    try {
      pg = make_group(store, o, nccl, timeout);
    } catch (const std::exception& e) {
      fail(BIOESP_ERR_NETWORK, "rank " + std::to_string(o.rank) + ": the " + (nccl ? "NCCL" : "Gloo") +
                                   " process group did not form within " + seconds() + ": " + first_line(e.what()));
    }
    heartbeat = std::thread([this] { beat(); });
  }

  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(m);
      stopping = true;
    }
    cv.notify_all();
    if (heartbeat.joinable()) heartbeat.join();
    try {
      store->add("bioesp/left", 1);
      // The store goes with rank 0: it waits for the others to be done with it (briefly when
      // the run failed: the others are stopping too).
      const auto until = std::chrono::steady_clock::now() +
                         (std::uncaught_exceptions() ? std::chrono::milliseconds(3000) : timeout);
      while (o.rank == 0 && store->add("bioesp/left", 0) < o.world_size && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    } catch (const std::exception&) {
    }
  }

  std::string seconds() const { return std::to_string(static_cast<int64_t>(o.timeout)) + " s"; }
  std::string where() const { return o.master_addr + ":" + std::to_string(o.master_port); }

  // Rendezvous: rank 0 hosts the store; every rank signs in once; all must within the timeout.
  void join() {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(o.master_port);
    so.isServer = o.rank == 0;
    so.waitWorkers = false;
    so.timeout = timeout;
    try {
      store = c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
    } catch (const std::exception& e) {
      fail(BIOESP_ERR_NETWORK, o.rank == 0 ? "rank 0 cannot host the rendezvous at " + where() + ": " + first_line(e.what())
                                           : "rank " + std::to_string(o.rank) + " cannot reach the rendezvous at " + where() +
                                                 " (rank 0 hosts it) within " + seconds() + ": " + first_line(e.what()));
    }
    try {
      if (store->add(key("rank", o.rank), 1) != 1)
        fail(BIOESP_ERR_INVALID_ARGUMENT, "rank " + std::to_string(o.rank) + " joined twice: each process needs a RANK of its own");
      store->add("bioesp/joined", 1);
      const auto until = std::chrono::steady_clock::now() + timeout;
      int64_t joined = 0;
      while ((joined = store->add("bioesp/joined", 0)) < o.world_size) {
        if (std::chrono::steady_clock::now() > until)
          fail(BIOESP_ERR_NETWORK, "only " + std::to_string(joined) + " of " + std::to_string(o.world_size) +
                                       " ranks joined the rendezvous at " + where() + " within " + seconds());
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      fail(BIOESP_ERR_NETWORK, "rank " + std::to_string(o.rank) + " lost the rendezvous at " + where() +
                                   ", which rank 0 hosts, before every rank joined: " + first_line(e.what()));
    }
  }

  // Every second, a sign of life the others read when something fails.
  void beat() {
    std::unique_lock<std::mutex> lock(m);
    while (!stopping) {
      lock.unlock();
      try {
        store->add(key("alive", o.rank), 1);
      } catch (const std::exception&) {
        return;  // the store is gone; whoever needs it says so
      }
      lock.lock();
      cv.wait_for(lock, std::chrono::seconds(1), [this] { return stopping; });
    }
  }

  // A collective failed: which rank is to blame, from what each left in the store.
  [[noreturn]] void lost(const std::exception& e) {
    const std::string mine = first_line(e.what());
    std::string who;
    try {
      store->set(key("failed", o.rank), bytes("lost contact: " + mine));
      std::vector<int64_t> before(o.world_size);
      for (int k = 0; k < o.world_size; ++k) before[k] = store->add(key("alive", k), 0);
      std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(timeout, std::chrono::milliseconds(2500)));
      for (int k = 0; k < o.world_size; ++k) {
        if (k == o.rank) continue;
        std::string what;
        if (store->check({key("failed", k)})) what = "rank " + std::to_string(k) + " failed: " + text(store->get(key("failed", k)));
        else if (store->add(key("alive", k), 0) == before[k]) what = "rank " + std::to_string(k) + " stopped answering (it died or froze)";
        if (!what.empty()) who += (who.empty() ? "" : "; ") + what;
      }
    } catch (const std::exception&) {
      if (o.rank != 0) who = "rank 0, which hosts the rendezvous at " + where() + ", is gone";
    }
    if (who.empty()) who = "the connection failed";
    fail(BIOESP_ERR_NETWORK, "rank " + std::to_string(o.rank) + " of " + std::to_string(o.world_size) + ": training stopped: " +
                                 who + " (" + mine + ")");
  }

  void wait(const c10::intrusive_ptr<c10d::Work>& work) {
    try {
      work->wait(timeout);
    } catch (const std::exception& e) {
      lost(e);
    }
  }

  void agree(const std::string& settings);
  double average(double value);
  bool any(bool value);
  std::vector<torch::Tensor> gather(const torch::Tensor& t);
  void broadcast(const std::vector<torch::Tensor>& tensors);
  void rank0_alone(const std::function<void()>& work);
  void announce(const std::string& why);
};

void Group::Impl::agree(const std::string& settings) {
  const std::string round = "settings" + std::to_string(++agreed);
  std::string first;
  try {
    store->set(key(round.c_str(), o.rank), bytes(settings));
    first = text(store->get(key(round.c_str(), 0)));
  } catch (const std::exception& e) {
    lost(e);
  }
  if (first == settings) return;
  const std::string why = "rank " + std::to_string(o.rank) + "'s settings differ from rank 0's: " + difference(settings, first);
  announce(why);
  fail(BIOESP_ERR_INVALID_ARGUMENT, why);
}

double Group::Impl::average(double value) {
  std::vector<at::Tensor> t{torch::tensor({value}, torch::kDouble).to(device)};
  wait(pg->allreduce(t));
  return t[0].item<double>() / o.world_size;
}

bool Group::Impl::any(bool value) {
  std::vector<at::Tensor> t{torch::tensor({value ? 1 : 0}, torch::kInt).to(device)};
  wait(pg->allreduce(t));
  return t[0].item<int>() > 0;
}

std::vector<torch::Tensor> Group::Impl::gather(const torch::Tensor& t) {
  std::vector<at::Tensor> in{t.to(device).contiguous()};
  std::vector<std::vector<at::Tensor>> out(1);
  for (int k = 0; k < o.world_size; ++k) out[0].push_back(torch::empty_like(in[0]));
  wait(pg->allgather(out, in));
  for (auto& x : out[0]) x = x.to(t.device());
  return out[0];
}

void Group::Impl::broadcast(const std::vector<torch::Tensor>& tensors) {
  // NCCL moves CUDA tensors only: anything elsewhere travels through a copy.
  std::vector<torch::Tensor> moved;
  for (const auto& t : tensors) moved.push_back(t.device() == device || !device.is_cuda() ? t : t.to(device));
  try {
    c10d::broadcast_coalesced(pg, moved, 25u << 20, 0);
  } catch (const std::exception& e) {
    lost(e);
  }
  for (size_t i = 0; i < tensors.size(); ++i)
    if (!moved[i].is_same(tensors[i])) tensors[i].copy_(moved[i]);
}

void Group::Impl::rank0_alone(const std::function<void()>& work) {
  const std::string done = "bioesp/rank0/" + std::to_string(++alone);
  if (o.rank == 0) {
    work();
    store->set(done, bytes("1"));
    return;
  }
  try {
    while (!store->check({done})) {
      if (store->check({key("failed", 0)})) fail(BIOESP_ERR_NETWORK, "rank 0 failed: " + text(store->get(key("failed", 0))));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    lost(e);
  }
}

void Group::Impl::announce(const std::string& why) {
  try {
    store->set(key("failed", o.rank), bytes(first_line(why)));
  } catch (const std::exception&) {
  }
}

// ------------------------------------------------------------------------------------------------

struct GradientAverage::Impl {
  struct Bucket {
    std::vector<size_t> members;  // indices into params
    int64_t numel = 0;
    size_t ready = 0;
    at::Tensor flat;  // the members' gradients, then one used-flag per member
    c10::intrusive_ptr<c10d::Work> work;
  };
  Group::Impl& g;
  std::vector<torch::Tensor> params;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;
  std::vector<uintptr_t> hooks;
  std::vector<Bucket> buckets;
  std::vector<size_t> bucket_of;
  std::vector<bool> seen;
  size_t next = 0;  // the first bucket not yet sent
  bool armed = false;
  std::mutex m;

  Impl(Group::Impl& group, const std::vector<torch::Tensor>& ps) : g(group), params(ps) {
    // As DDP buckets: in reverse order of the parameters, roughly the order the backward pass
    // produces their gradients; one dtype and device per bucket.
    size_t cap = 1u << 20, bytes = 0;
    for (size_t i = params.size(); i-- > 0;) {
      const auto& p = params[i];
      const bool fits = !buckets.empty() && bytes + p.nbytes() <= cap &&
                        params[buckets.back().members.front()].scalar_type() == p.scalar_type() &&
                        params[buckets.back().members.front()].device() == p.device();
      if (!fits) {
        if (!buckets.empty()) cap = 25u << 20;
        buckets.emplace_back();
        bytes = 0;
      }
      buckets.back().members.push_back(i);
      buckets.back().numel += p.numel();
      bytes += p.nbytes();
    }
    bucket_of.resize(params.size());
    for (size_t b = 0; b < buckets.size(); ++b)
      for (size_t i : buckets[b].members) bucket_of[i] = b;
    seen.assign(params.size(), false);
    for (size_t i = 0; i < params.size(); ++i) {
      accumulators.push_back(torch::autograd::impl::grad_accumulator(params[i]));
      if (!accumulators.back()) fail(BIOESP_ERR_INTERNAL, "a trained tensor is not a leaf of the autograd graph");
      hooks.push_back(accumulators.back()->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
          [this, i](const torch::autograd::variable_list& out, const torch::autograd::variable_list&) {
            ready(i);
            return out;
          })));
    }
  }

  ~Impl() {
    for (size_t i = 0; i < accumulators.size(); ++i) accumulators[i]->del_post_hook(hooks[i]);
  }

  // Called by autograd once params[i]'s gradient of this backward pass is accumulated.
  void ready(size_t i) {
    std::lock_guard<std::mutex> lock(m);
    if (!armed || seen[i]) return;
    seen[i] = true;
    ++buckets[bucket_of[i]].ready;
    while (next < buckets.size() && buckets[next].ready == buckets[next].members.size()) send(next++);
  }

  void send(size_t b) {
    Bucket& k = buckets[b];
    const auto& like = params[k.members.front()];
    std::vector<at::Tensor> parts;
    std::vector<float> used;
    for (size_t i : k.members) {
      const auto& grad = params[i].grad();
      parts.push_back(grad.defined() ? grad.reshape({-1}) : torch::zeros({params[i].numel()}, like.options()));
      used.push_back(grad.defined() ? 1.0f : 0.0f);
    }
    parts.push_back(torch::tensor(used).to(like.options()));
    k.flat = torch::cat(parts).div_(static_cast<double>(g.o.world_size));
    std::vector<at::Tensor> v{k.flat};
    k.work = g.pg->allreduce(v);
  }

  double finish() {
    {
      std::lock_guard<std::mutex> lock(m);
      while (next < buckets.size()) send(next++);
      armed = false;
    }
    const auto start = std::chrono::steady_clock::now();
    for (auto& k : buckets) g.wait(k.work);
    const double waited = Seconds(std::chrono::steady_clock::now() - start).count();
    torch::NoGradGuard no_grad;
    for (auto& k : buckets) {
      auto used = k.flat.slice(0, k.numel).to(torch::kCPU, torch::kFloat);
      int64_t at = 0;
      for (size_t j = 0; j < k.members.size(); ++j) {
        auto& p = params[k.members[j]];
        auto avg = k.flat.slice(0, at, at + p.numel()).view(p.sizes());
        at += p.numel();
        if (!(used[static_cast<int64_t>(j)].item<float>() > 0)) continue;
        if (p.grad().defined()) p.mutable_grad().copy_(avg);
        else p.mutable_grad() = avg.clone();
      }
      k.ready = 0;
      k.work.reset();
      k.flat = at::Tensor();
    }
    next = 0;
    seen.assign(params.size(), false);
    return waited;
  }
};

#else  // no c10d with Gloo in this LibTorch: one process only

struct Group::Impl {
  Impl(const DistributedOptions&, const torch::Device&) {
    fail(BIOESP_ERR_UNSUPPORTED, "this build cannot train across processes: its LibTorch has no c10d with Gloo (on "
                                 "Debian, install libgloo-dev and rebuild)");
  }
  // Never reached: nothing constructs an Impl here.
  void agree(const std::string&) {}
  double average(double v) { return v; }
  bool any(bool v) { return v; }
  std::vector<torch::Tensor> gather(const torch::Tensor& t) { return {t}; }
  void broadcast(const std::vector<torch::Tensor>&) {}
  void rank0_alone(const std::function<void()>& work) { work(); }
  void announce(const std::string&) {}
  DistributedOptions o;
};

struct GradientAverage::Impl {
  Impl(Group::Impl&, const std::vector<torch::Tensor>&) {}
  bool armed = false;
  std::mutex m;
  double finish() { return 0; }
};

#endif

// A group of one process needs none of it: every call answers for itself alone.
Group::Group(const DistributedOptions& o, const torch::Device& device) {
  validate(o);
  if (o.world_size > 1) impl_ = std::make_unique<Impl>(o, device);
}
void Group::agree(const std::string& settings) {
  if (impl_) impl_->agree(settings);
}
Group::~Group() = default;
int Group::rank() const { return impl_ ? impl_->o.rank : 0; }
int Group::size() const { return impl_ ? impl_->o.world_size : 1; }
double Group::average(double value) { return impl_ ? impl_->average(value) : value; }
bool Group::any(bool value) { return impl_ ? impl_->any(value) : value; }
std::vector<torch::Tensor> Group::gather(const torch::Tensor& t) { return impl_ ? impl_->gather(t) : std::vector{t}; }
void Group::broadcast(const std::vector<torch::Tensor>& tensors) {
  if (impl_) impl_->broadcast(tensors);
}
void Group::rank0_alone(const std::function<void()>& work) {
  if (impl_) impl_->rank0_alone(work);
  else work();
}
void Group::announce_failure(const std::string& why) {
  if (impl_) impl_->announce(why);
}

GradientAverage::GradientAverage(Group& group, const std::vector<torch::Tensor>& params) {
  if (group.impl_) impl_ = std::make_unique<Impl>(*group.impl_, params);
}
GradientAverage::~GradientAverage() = default;
void GradientAverage::arm() {
  if (!impl_) return;
  std::lock_guard<std::mutex> lock(impl_->m);
  impl_->armed = true;
}
double GradientAverage::finish() { return impl_ ? impl_->finish() : 0; }

}  // namespace bioesp::train
