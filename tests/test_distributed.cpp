// Training across processes on c10d (Gloo over the loopback), the ranks as threads of this test:
// two ranks of batch 1 each end three steps with the LoRA of one process of batch 2 over the same
// samples, noise and timesteps (also with gradient accumulation and the text encoder's LoRA); the
// group's collectives; and rendezvous errors that must come within the timeout, naming the cause.
#include <torch/torch.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <thread>

#include "core/error.h"
#include "pipeline/pipeline.h"
#include "train/distributed.h"
#include "train/trainer.h"
extern "C" {
#include "support/testutil.h"
}

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
extern "C" {
#include <cmocka.h>
}

using namespace bioesp;

static std::string model_dir() { return path_join(ref_dir(), "models/tiny-sd1"); }

static int free_port() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t n = sizeof a;
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &n);
  close(s);
  return ntohs(a.sin_port);
}

static train::DistributedOptions rank_of(int rank, int world, int port, double timeout = 20) {
  train::DistributedOptions d;
  d.world_size = world;
  d.rank = rank;
  d.master_port = port;
  d.backend = "gloo";
  d.timeout = timeout;
  return d;
}

// cmocka's checks cannot run on other threads: a rank's thread throws, and on_ranks fails the test.
static void require(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what);
}

// Runs `body(rank)` on `world` threads; a rank's error fails the test.
static void on_ranks(int world, const std::function<void(int)>& body) {
  std::vector<std::thread> threads;
  std::vector<std::string> errors(world);
  for (int r = 0; r < world; ++r)
    threads.emplace_back([&, r] {
      try {
        body(r);
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < world; ++r)
    if (!errors[r].empty()) fail_msg("rank %d: %s", r, errors[r].c_str());
}

// Three optimizer steps of `accumulation` micro-batches of two samples, every random draw given.
struct Inputs {
  std::vector<train::StepInputs> micro;  // [step * accumulation + a], batch 2
};

static Inputs make_inputs(pipeline::StableDiffusion& sd, int accumulation, bool text_encoder) {
  at::Generator g = at::detail::createCPUGenerator(5);
  Inputs b;
  const char* captions[] = {"un colibrí especulativo", "una rana de cristal"};
  std::vector<torch::Tensor> ids;
  for (const char* c : captions) ids.push_back(torch::tensor(sd.tokenizer().encode(c).ids, torch::kLong));
  auto input_ids = torch::stack(ids);
  torch::Tensor ehs;
  {
    torch::NoGradGuard no_grad;
    ehs = sd.text_encoder()->encode(input_ids, 0);
  }
  for (int i = 0; i < 3 * accumulation; ++i) {
    train::StepInputs in;
    in.pixel_values = at::rand({2, 3, 64, 64}, g) * 2 - 1;
    in.vae_eps = at::randn({2, 4, 8, 8}, g);
    in.noise = at::randn({2, 4, 8, 8}, g);
    in.timesteps = at::randint(0, 1000, {2}, g, torch::kLong);
    (text_encoder ? in.input_ids : in.encoder_hidden_states) = text_encoder ? input_ids : ehs;
    b.micro.push_back(in);
  }
  return b;
}

// Sample r of every field of a batch of two.
static train::StepInputs slice(const train::StepInputs& in, int r) {
  train::StepInputs s;
  auto one = [r](const torch::Tensor& t) { return t.defined() ? t.slice(0, r, r + 1) : t; };
  s.pixel_values = one(in.pixel_values), s.vae_eps = one(in.vae_eps), s.noise = one(in.noise);
  s.timesteps = one(in.timesteps), s.input_ids = one(in.input_ids), s.encoder_hidden_states = one(in.encoder_hidden_states);
  return s;
}

static torch::Tensor flat(const train::Trainer& tr, bool grads) {
  std::vector<torch::Tensor> v;
  for (const auto& [name, p] : tr.parameters()) v.push_back((grads ? p.grad() : p).detach().flatten());
  return torch::cat(v);
}

static double rel(const torch::Tensor& a, const torch::Tensor& b) { return ((a - b).norm() / b.norm()).item<double>(); }

static void expect_two_ranks_equal_one(int accumulation, bool text_encoder) {
  train::Setup setup;
  setup.train_text_encoder = text_encoder;
  setup.seed = 3;
  const double lr = 1e-3;
  auto sd = pipeline::StableDiffusion::load(model_dir(), {});
  const Inputs inputs = make_inputs(*sd, accumulation, text_encoder);

  // One process, batch 2: the gradients of the first step and the weights after three.
  train::Trainer one(*sd, setup);
  const auto initial = flat(one, false).clone();
  torch::Tensor first_grads;
  for (int step = 0; step < 3; ++step) {
    for (int a = 0; a < accumulation; ++a) one.backward(inputs.micro[step * accumulation + a], accumulation);
    if (step == 0) first_grads = flat(one, true).clone();
    one.update(lr);
  }
  const auto want = flat(one, false).clone();

  // Two ranks of batch 1, each its own model, on the two halves of the same inputs.
  const int port = free_port();
  std::vector<torch::Tensor> got(2), grads(2);
  on_ranks(2, [&](int r) {
    auto mine = pipeline::StableDiffusion::load(model_dir(), {});
    train::Trainer tr(*mine, setup);
    train::Group group(rank_of(r, 2, port), torch::kCPU);
    std::vector<torch::Tensor> params;
    for (const auto& p : tr.parameters()) params.push_back(p.second);
    train::GradientAverage average(group, params);
    for (int step = 0; step < 3; ++step) {
      for (int a = 0; a < accumulation; ++a) {
        if (a == accumulation - 1) average.arm();
        tr.backward(slice(inputs.micro[step * accumulation + a], r), accumulation);
      }
      average.finish();
      if (step == 0) grads[r] = flat(tr, true).clone();
      tr.update(lr);
    }
    got[r] = flat(tr, false).clone();
  });
  const double g = rel(grads[0], first_grads), w = rel(got[0], want), u = rel(got[0] - initial, want - initial);
  print_message("accumulation %d, text encoder %d: averaged gradients vs batch 2 %.2g, LoRA %.2g (its change %.2g)\n",
                accumulation, text_encoder, g, w, u);
  assert_true(torch::equal(got[0], got[1]));  // the ranks agree exactly
  assert_true(g <= 1e-5);
  assert_true(w <= 1e-5);
  assert_true(u <= 1e-3);
}

static void test_two_ranks_equal_one_process(void** state) {
  (void)state;
  expect_two_ranks_equal_one(1, false);
}

static void test_with_gradient_accumulation(void** state) {
  (void)state;
  expect_two_ranks_equal_one(2, false);
}

static void test_with_the_text_encoder(void** state) {
  (void)state;
  expect_two_ranks_equal_one(1, true);
}

static void test_collectives(void** state) {
  (void)state;
  const int port = free_port();
  on_ranks(3, [&](int r) {
    train::Group g(rank_of(r, 3, port), torch::kCPU);
    require(g.rank() == r && g.size() == 3, "rank and size");
    require(g.average(r) == 1.0, "the average of 0, 1, 2");
    require(g.any(r == 2) && !g.any(false), "any");
    auto all = g.gather(torch::full({2}, r, torch::kUInt8));
    for (int k = 0; k < 3; ++k) require(all[k][1].item<int>() == k, "gathered in rank order");
    auto t = torch::full({3}, 10.0 * r);
    g.broadcast({t});
    require(t[2].item<double>() == 0.0, "rank 0's values broadcast");
    int ran = 0;
    g.rank0_alone([&] { ++ran; });
    require(ran == (r == 0 ? 1 : 0), "rank 0 alone works");
    g.agree("same\n");
    try {
      g.agree(r == 1 ? "steps 12\n" : "steps 10\n");
      require(r != 1, "different settings were accepted");
    } catch (const Error& e) {
      require(r == 1 && std::strstr(e.what(), "'steps 12' here, 'steps 10' on rank 0"), e.what());
    }
  });
}

// An error that must come within the timeout (plus the moments a diagnosis takes), naming its cause.
static void expect_error_within(double seconds, const std::function<void()>& f, const char* fragment) {
  const auto start = std::chrono::steady_clock::now();
  try {
    f();
    fail_msg("expected an error containing '%s'", fragment);
  } catch (const Error& e) {
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    print_message("after %.1f s: %s\n", took, e.what());
    assert_non_null(std::strstr(e.what(), fragment));
    assert_true(took <= seconds);
  }
}

static void test_rendezvous_errors(void** state) {
  (void)state;
  auto join = [](train::DistributedOptions d) { return [d] { train::Group g(d, torch::kCPU); }; };
  // A world that never fills.
  expect_error_within(8, join(rank_of(0, 2, free_port(), 3)), "only 1 of 2 ranks joined the rendezvous at 127.0.0.1:");
  // Nobody at the port.
  expect_error_within(8, join(rank_of(1, 2, free_port(), 3)), "cannot reach the rendezvous at 127.0.0.1:");
  // A port already taken, and the same rank twice.
  const int port = free_port();
  std::thread host([&] { expect_error_within(8, join(rank_of(0, 3, port, 3)), "only 2 of 3 ranks joined"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  expect_error_within(8, join(rank_of(0, 3, port, 3)), "rank 0 cannot host the rendezvous");
  std::thread first([&] { expect_error_within(8, join(rank_of(1, 3, port, 6)), "lost the rendezvous at 127.0.0.1:"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  expect_error_within(8, join(rank_of(1, 3, port, 3)), "rank 1 joined twice");
  first.join();
  host.join();
  auto bad = rank_of(0, 2, free_port(), 3);
  bad.backend = "mpi";
  expect_error_within(1, join(bad), "backend 'mpi' is not gloo, nccl or auto");
  bad = rank_of(2, 2, free_port(), 3);
  expect_error_within(1, join(bad), "rank 2 is not one of 0 to 1");
}

static void test_environment(void** state) {
  (void)state;
  setenv("WORLD_SIZE", "4", 1);
  setenv("RANK", "3", 1);
  setenv("LOCAL_RANK", "1", 1);
  setenv("LOCAL_WORLD_SIZE", "2", 1);
  setenv("MASTER_ADDR", "10.0.0.7", 1);
  setenv("MASTER_PORT", "29555", 1);
  auto d = train::from_environment({});
  assert_int_equal(d.world_size, 4);
  assert_int_equal(d.rank, 3);
  assert_int_equal(d.local_rank, 1);
  assert_string_equal(d.master_addr.c_str(), "10.0.0.7");
  assert_int_equal(d.master_port, 29555);
  setenv("RANK", "4", 1);
  try {
    train::from_environment({});
    fail_msg("RANK=4 of 4 was accepted");
  } catch (const Error& e) {
    assert_non_null(std::strstr(e.what(), "RANK=4 is not a whole number from 0 to 3"));
  }
  setenv("RANK", "3", 1);
  setenv("MASTER_PORT", "http", 1);
  try {
    train::from_environment({});
    fail_msg("MASTER_PORT=http was accepted");
  } catch (const Error& e) {
    assert_non_null(std::strstr(e.what(), "MASTER_PORT=http"));
  }
  for (const char* v : {"WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"}) unsetenv(v);
}

int main(void) {
  if (train::distributed_backends().empty()) {
    print_message("this build cannot train across processes (no c10d with Gloo): skipped\n");
    return 77;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_environment),         cmocka_unit_test(test_collectives),
      cmocka_unit_test(test_rendezvous_errors),   cmocka_unit_test(test_two_ranks_equal_one_process),
      cmocka_unit_test(test_with_gradient_accumulation), cmocka_unit_test(test_with_the_text_encoder)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
