// The scheduler classes by name, and diffusers' from_config: which keys of a config a class takes,
// which fall back to its defaults, and which ride along for later swaps (configuration_utils.py's
// extract_init_dict and register_to_config).
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <type_traits>

#include "config/model_config.h"
#include "core/error.h"
#include "sched/classes.h"

namespace bioesp::sched {

namespace {

using json = nlohmann::ordered_json;

// Every __init__ argument of a diffusers class with its default, in signature order. null is
// None, and DPM-Solver's lambda_min_clipped default, -inf, which JSON cannot write.
#define BIOESP_DDPM_BETAS \
  R"("num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02, "beta_schedule": "linear", "trained_betas": null)"
#define BIOESP_THRESHOLDING R"("thresholding": false, "dynamic_thresholding_ratio": 0.995)"
#define BIOESP_NO_EXOTIC_SIGMAS R"("use_exponential_sigmas": false, "use_beta_sigmas": false)"
#define BIOESP_SHIFTS R"("use_dynamic_shifting": false, "time_shift_type": "exponential")"

const char* const kPNDM = "{" BIOESP_DDPM_BETAS R"(, "skip_prk_steps": false, "set_alpha_to_one": false,
    "prediction_type": "epsilon", "timestep_spacing": "leading", "steps_offset": 0})";
const char* const kDDIM = "{" BIOESP_DDPM_BETAS R"(, "clip_sample": true, "set_alpha_to_one": true, "steps_offset": 0,
    "prediction_type": "epsilon", )" BIOESP_THRESHOLDING R"(, "clip_sample_range": 1.0, "sample_max_value": 1.0,
    "timestep_spacing": "leading", "rescale_betas_zero_snr": false})";
const char* const kDDPM = "{" BIOESP_DDPM_BETAS R"(, "variance_type": "fixed_small", "clip_sample": true,
    "prediction_type": "epsilon", )" BIOESP_THRESHOLDING R"(, "clip_sample_range": 1.0, "sample_max_value": 1.0,
    "timestep_spacing": "leading", "steps_offset": 0, "rescale_betas_zero_snr": false})";
const char* const kEuler = "{" BIOESP_DDPM_BETAS R"(, "prediction_type": "epsilon", "interpolation_type": "linear",
    "use_karras_sigmas": false, )" BIOESP_NO_EXOTIC_SIGMAS R"(, "sigma_min": null, "sigma_max": null,
    "timestep_spacing": "linspace", "timestep_type": "discrete", "steps_offset": 0, "rescale_betas_zero_snr": false,
    "final_sigmas_type": "zero"})";
const char* const kEulerAncestral = "{" BIOESP_DDPM_BETAS R"(, "prediction_type": "epsilon", "timestep_spacing": "linspace",
    "steps_offset": 0, "rescale_betas_zero_snr": false})";
const char* const kDPMSolver = "{" BIOESP_DDPM_BETAS R"(, "solver_order": 2, "prediction_type": "epsilon",
    )" BIOESP_THRESHOLDING R"(, "sample_max_value": 1.0, "algorithm_type": "dpmsolver++", "solver_type": "midpoint",
    "lower_order_final": true, "euler_at_final": false, "use_karras_sigmas": false, )" BIOESP_NO_EXOTIC_SIGMAS R"(,
    "use_lu_lambdas": false, "use_flow_sigmas": false, "flow_shift": 1.0, "final_sigmas_type": "zero",
    "lambda_min_clipped": null, "variance_type": null, "timestep_spacing": "linspace", "steps_offset": 0,
    "rescale_betas_zero_snr": false, )" BIOESP_SHIFTS "}";
const char* const kUniPC = "{" BIOESP_DDPM_BETAS R"(, "solver_order": 2, "prediction_type": "epsilon",
    )" BIOESP_THRESHOLDING R"(, "sample_max_value": 1.0, "predict_x0": true, "solver_type": "bh2",
    "lower_order_final": true, "disable_corrector": [], "solver_p": null, "use_karras_sigmas": false,
    )" BIOESP_NO_EXOTIC_SIGMAS R"(, "use_flow_sigmas": false, "flow_shift": 1.0, "timestep_spacing": "linspace",
    "steps_offset": 0, "final_sigmas_type": "zero", "rescale_betas_zero_snr": false, )" BIOESP_SHIFTS R"(,
    "sigma_min": null, "sigma_max": null, "shift_terminal": null})";
// LCMScheduler and TCDScheduler take the same arguments.
const char* const kConsistency = R"({"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "trained_betas": null, "original_inference_steps": 50, "clip_sample": false,
    "clip_sample_range": 1.0, "set_alpha_to_one": true, "steps_offset": 0, "prediction_type": "epsilon",
    )" BIOESP_THRESHOLDING R"(, "sample_max_value": 1.0, "timestep_spacing": "leading", "timestep_scaling": 10.0,
    "rescale_betas_zero_snr": false})";

struct Class {
  const char* name;       // bioesp's
  const char* diffusers;  // the class it is
  const char* defaults;   // its __init__ arguments with their defaults
  const char* implied;    // from_config keyword arguments the name stands for
  bool float_timesteps;   // diffusers keeps its timesteps as float32 (else int64)
  std::unique_ptr<Scheduler> (*make)(SchedulerConfig);
};

template <class T>
std::unique_ptr<Scheduler> make(SchedulerConfig c) {
  return std::make_unique<T>(std::move(c));
}
std::unique_ptr<Scheduler> make_euler(SchedulerConfig c) { return std::make_unique<Euler>(std::move(c), false); }
std::unique_ptr<Scheduler> make_euler_ancestral(SchedulerConfig c) { return std::make_unique<Euler>(std::move(c), true); }

// The one list of schedulers: names, classes, order.
const Class kClasses[] = {
    {"pndm", "PNDMScheduler", kPNDM, "{}", false, make<PNDM>},
    {"ddim", "DDIMScheduler", kDDIM, "{}", false, make<DDIM>},
    {"euler", "EulerDiscreteScheduler", kEuler, "{}", true, make_euler},
    {"euler_a", "EulerAncestralDiscreteScheduler", kEulerAncestral, "{}", true, make_euler_ancestral},
    {"dpmpp_2m", "DPMSolverMultistepScheduler", kDPMSolver, "{}", false, make<DPMSolver>},
    {"dpmpp_2m_karras", "DPMSolverMultistepScheduler", kDPMSolver, R"({"use_karras_sigmas": true})", false, make<DPMSolver>},
    {"unipc", "UniPCMultistepScheduler", kUniPC, "{}", false, make<UniPC>},
    {"ddpm", "DDPMScheduler", kDDPM, "{}", false, make<DDPM>},
    {"lcm", "LCMScheduler", kConsistency, "{}", false, make<LCM>},
    {"tcd", "TCDScheduler", kConsistency, "{}", false, make<TCD>},
};

std::string known_names() {
  std::string known;
  for (const auto& n : scheduler_names()) known += (known.empty() ? "" : ", ") + n;
  return known;
}

const Class* by_name(const std::string& name) {
  for (const auto& c : kClasses)
    if (name == c.name) return &c;
  return nullptr;
}

const Class* by_class(const std::string& diffusers) {
  for (const auto& c : kClasses)
    if (diffusers == c.diffusers) return &c;  // the plain entry comes first
  return nullptr;
}

json parse_config(const std::string& text) {
  json j;
  try {
    j = json::parse(config::from_python_json(text));
  } catch (const json::exception& e) {
    fail(BIOESP_ERR_FORMAT, std::string("scheduler_config.json: malformed JSON: ") + e.what());
  }
  if (!j.is_object()) fail(BIOESP_ERR_FORMAT, "scheduler_config.json is not an object");
  return j;
}

// "name:key=value,key=value": the name and its from_config settings (values as JSON, else text).
std::pair<std::string, json> parse_name(const std::string& spec) {
  const size_t colon = spec.find(':');
  json settings = json::object();
  if (colon == std::string::npos) return {spec, settings};
  const std::string rest = spec.substr(colon + 1);
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i <= rest.size(); ++i) {
    const char ch = i < rest.size() ? rest[i] : ',';
    depth += (ch == '[' || ch == '{') - (ch == ']' || ch == '}');
    if (ch != ',' || depth > 0) continue;
    const std::string item = rest.substr(start, i - start);
    start = i + 1;
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      fail(BIOESP_ERR_INVALID_ARGUMENT, "scheduler setting '" + item + "' is not key=value (as in euler:timestep_spacing=trailing)");
    const std::string value = item.substr(eq + 1);
    settings[item.substr(0, eq)] = json::accept(value) ? json::parse(value) : json(value);
  }
  return {spec.substr(0, colon), settings};
}

// __init__ normalisations diffusers records in the config: solver types of the other solver
// family map to this one's default.
void normalise(const Class& cls, json& init) {
  const std::string cls_name = cls.diffusers;
  auto solver = init.find("solver_type");
  if (solver == init.end() || !solver->is_string()) return;
  const std::string s = *solver;
  if (cls_name == "DPMSolverMultistepScheduler" && (s == "logrho" || s == "bh1" || s == "bh2")) *solver = "midpoint";
  if (cls_name == "UniPCMultistepScheduler" && (s == "midpoint" || s == "heun" || s == "logrho")) *solver = "bh2";
}

struct Built {
  json init;  // the class's __init__ arguments
  json full;  // as diffusers holds the config: + _use_default_values + the keys kept for others
};

// Class.from_config(config, **kwargs).
Built from_config(const Class& cls, const json& config, const json& kwargs) {
  // Keys the config itself took from defaults are not carried: the class uses its own.
  std::set<std::string> defaulted;
  auto listed = config.find("_use_default_values");
  if (listed != config.end() && listed->is_array())
    for (const auto& k : *listed)
      if (k.is_string()) defaulted.insert(k.get<std::string>());
  auto given = [&](const std::string& k) { return config.contains(k) && !defaulted.count(k); };
  json init = json::parse(cls.defaults);
  for (const auto& [k, v] : kwargs.items())
    if (!init.contains(k))
      fail(BIOESP_ERR_INVALID_ARGUMENT, std::string("scheduler '") + cls.name + "' (" + cls.diffusers + ") has no setting '" + k + "'");
  std::vector<std::string> defaults;
  for (auto& [k, v] : init.items()) {
    if (kwargs.contains(k)) v = kwargs[k];
    else if (given(k)) v = config[k];
    else defaults.push_back(k);
  }
  normalise(cls, init);
  json full = init;
  std::sort(defaults.begin(), defaults.end());
  if (!defaults.empty()) full["_use_default_values"] = defaults;
  for (const auto& [k, v] : config.items())
    if (k != "_use_default_values" && given(k) && !init.contains(k)) full[k] = k == "_class_name" ? json(cls.diffusers) : v;
  return {init, full};
}

[[noreturn]] void wrong_type(const std::string& key, const char* want) {
  fail(BIOESP_ERR_FORMAT, "scheduler config: '" + key + "' must be " + want);
}

// Typed reads of the class's arguments (null keeps the default).
struct Reader {
  const json& j;
  const json* get(const char* key) const {
    auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  }
  void integer(const char* key, int& out, int lo, int hi) const {
    const json* v = get(key);
    if (!v) return;
    const double d = v->is_number() ? v->get<double>() : NAN;
    if (!(d >= lo && d <= hi) || d != std::floor(d))
      wrong_type(key, ("an integer from " + std::to_string(lo) + " to " + std::to_string(hi)).c_str());
    out = static_cast<int>(d);
  }
  void number(const char* key, double& out) const {
    const json* v = get(key);
    if (v && !v->is_number()) wrong_type(key, "a number");
    if (v) out = v->get<double>();
  }
  void optional_number(const char* key, std::optional<double>& out) const {
    double d = 0;
    number(key, d);
    if (get(key)) out = d;
  }
  void boolean(const char* key, bool& out) const {
    const json* v = get(key);
    if (v && !v->is_boolean()) wrong_type(key, "true or false");
    if (v) out = v->get<bool>();
  }
  void text(const char* key, std::string& out) const {
    const json* v = get(key);
    if (v && !v->is_string()) wrong_type(key, "a string");
    if (v) out = v->get<std::string>();
  }
  template <class T>
  void list(const char* key, std::vector<T>& out) const {
    const json* v = get(key);
    if (!v) return;
    if (!v->is_array()) wrong_type(key, "a list of numbers");
    for (const auto& e : *v) {
      const double d = e.is_number() ? e.get<double>() : NAN;
      if (!std::isfinite(d) || (std::is_integral_v<T> && (d != std::floor(d) || std::fabs(d) > 1e9)))
        wrong_type(key, std::is_integral_v<T> ? "a list of integers" : "a list of numbers");
      out.push_back(static_cast<T>(d));
    }
  }
  // Where the class has `key`, its value must be `allowed` (a feature bioesp does not implement).
  void must(const char* key, const json& allowed) const {
    auto it = j.find(key);
    if (it != j.end() && *it != allowed)
      fail(BIOESP_ERR_UNSUPPORTED, std::string("scheduler config: '") + key + "' = " + it->dump() + " is not supported");
  }
  void one_of(const char* key, const std::string& value, std::initializer_list<const char*> allowed) const {
    if (!j.contains(key)) return;
    for (const char* a : allowed)
      if (value == a) return;
    fail(BIOESP_ERR_UNSUPPORTED, std::string("scheduler config: ") + key + " '" + value + "' is not supported");
  }
};

SchedulerConfig read_config(const Class& cls, const std::string& name, const Built& b) {
  const Reader r{b.init};
  SchedulerConfig c;
  c.name = name;
  c.json = b.full.dump();
  r.integer("num_train_timesteps", c.num_train_timesteps, 2, 100000);
  r.number("beta_start", c.beta_start);
  r.number("beta_end", c.beta_end);
  r.text("beta_schedule", c.beta_schedule);
  r.list("trained_betas", c.trained_betas);
  r.text("prediction_type", c.prediction_type);
  r.text("timestep_spacing", c.timestep_spacing);
  r.integer("steps_offset", c.steps_offset, 0, c.num_train_timesteps - 1);
  r.boolean("clip_sample", c.clip_sample);
  r.number("clip_sample_range", c.clip_sample_range);
  r.boolean("set_alpha_to_one", c.set_alpha_to_one);
  r.boolean("rescale_betas_zero_snr", c.rescale_betas_zero_snr);
  r.boolean("use_karras_sigmas", c.use_karras_sigmas);
  r.optional_number("sigma_min", c.sigma_min);
  r.optional_number("sigma_max", c.sigma_max);
  r.text("final_sigmas_type", c.final_sigmas_type);
  r.integer("solver_order", c.solver_order, 1, 3);
  r.boolean("lower_order_final", c.lower_order_final);
  r.boolean("euler_at_final", c.euler_at_final);
  r.number("lambda_min_clipped", c.lambda_min_clipped);
  r.text("solver_type", c.solver_type);
  r.list("disable_corrector", c.disable_corrector);
  c.original_inference_steps = 0;  // TCD without it (null) spans every training timestep
  r.integer("original_inference_steps", c.original_inference_steps, 1, c.num_train_timesteps);
  r.number("timestep_scaling", c.timestep_scaling);

  r.one_of("prediction_type", c.prediction_type, {"epsilon", "v_prediction", "sample"});
  r.one_of("timestep_spacing", c.timestep_spacing, {"leading", "trailing", "linspace"});
  r.one_of("final_sigmas_type", c.final_sigmas_type, {"zero", "sigma_min"});
  for (const char* off : {"thresholding", "use_exponential_sigmas", "use_beta_sigmas", "use_lu_lambdas",
                          "use_flow_sigmas", "use_dynamic_shifting"})
    r.must(off, false);
  for (const char* none : {"solver_p", "shift_terminal"}) r.must(none, nullptr);
  r.must("timestep_type", "discrete");
  r.must("interpolation_type", "linear");
  r.must("algorithm_type", "dpmsolver++");
  r.must("predict_x0", true);
  const std::string cls_name = cls.diffusers;
  if (cls_name == "LCMScheduler" && c.original_inference_steps == 0) wrong_type("original_inference_steps", "set for LCM");
  r.must("variance_type", cls_name == "DDPMScheduler" ? json("fixed_small") : json(nullptr));
  if (cls_name == "PNDMScheduler") {
    if (!b.init.value("skip_prk_steps", false))
      fail(BIOESP_ERR_UNSUPPORTED, "PNDM's Runge-Kutta warm-up (skip_prk_steps false) is not supported: use "
                                   "pndm:skip_prk_steps=true (PLMS from the first step, as Stable Diffusion's configs say)");
    r.one_of("prediction_type", c.prediction_type, {"epsilon", "v_prediction"});
  }
  if (cls_name == "DPMSolverMultistepScheduler") {
    r.one_of("solver_type", c.solver_type, {"midpoint"});
    if (c.solver_order > 2) fail(BIOESP_ERR_UNSUPPORTED, "scheduler config: DPM-Solver++ solver_order 3 is not supported");
  }
  if (cls_name == "UniPCMultistepScheduler") r.one_of("solver_type", c.solver_type, {"bh1", "bh2"});
  return c;
}

struct Resolved {
  const Class* cls;
  std::string name;
  Built built;
};

// The most specific name for what was built: dpmpp_2m_karras for DPM-Solver++ with Karras σ.
std::string name_of(const Class& cls, const json& init) {
  const Class* best = &cls;
  size_t best_keys = 0;
  for (const auto& c : kClasses) {
    if (std::string(c.diffusers) != cls.diffusers) continue;
    json implied = json::parse(c.implied);
    bool holds = true;
    for (const auto& [k, v] : implied.items()) holds = holds && init.value(k, json()) == v;
    if (holds && implied.size() >= best_keys) best = &c, best_keys = implied.size();
  }
  return best->name;
}

Resolved resolve(const std::string& text, const std::string& spec) {
  const json file = parse_config(text);
  const auto [name, settings] = parse_name(spec);
  auto given_class = file.find("_class_name");
  const std::string cls_name = given_class != file.end() && given_class->is_string() ? given_class->get<std::string>() : "";
  const Class* own = by_class(cls_name);
  // The file as its own class holds it (Own.from_pretrained(file).config), then the swap.
  const json source = own ? from_config(*own, file, json::object()).full : file;
  const Class* target = name.empty() ? own : by_name(name);
  if (!target && !name.empty()) fail(BIOESP_ERR_INVALID_ARGUMENT, "unknown scheduler '" + name + "' (known: " + known_names() + ")");
  if (!target)
    fail(BIOESP_ERR_UNSUPPORTED, "scheduler class '" + cls_name + "' is not supported; choose one by name (" + known_names() + ")");
  json kwargs = json::parse(target->implied);
  kwargs.update(settings);
  Built built = from_config(*target, source, kwargs);
  return {target, name_of(*target, built.init), std::move(built)};
}

std::unique_ptr<Scheduler> construct(const Resolved& r) { return r.cls->make(read_config(*r.cls, r.name, r.built)); }

}  // namespace

const std::vector<std::string>& scheduler_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& c : kClasses) n.emplace_back(c.name);
    return n;
  }();
  return names;
}

std::unique_ptr<Scheduler> make_scheduler(const std::string& text, const std::string& name) {
  return construct(resolve(text, name));
}

std::string describe(const std::string& text, const std::string& name, int steps) {
  const Resolved r = resolve(text, name);
  auto s = construct(r);
  s->set_timesteps(steps);
  json timesteps = json::array();
  for (double t : s->timesteps()) timesteps.push_back(r.cls->float_timesteps ? json(t) : json(static_cast<int64_t>(t)));
  json out = {{"scheduler", r.name}, {"class", r.cls->diffusers}, {"config", r.built.full}, {"steps", steps},
              {"timesteps", timesteps}};
  if (auto* sigma = dynamic_cast<const SigmaScheduler*>(s.get())) out["sigmas"] = sigma->sigmas();
  out["init_noise_sigma"] = s->init_noise_sigma();
  return out.dump(2);
}

}  // namespace bioesp::sched
