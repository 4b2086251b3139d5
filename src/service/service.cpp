// Service: identity, model lifecycle, quotas, sequences, routing.
#include "service/service.h"

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>

#include "base/error.h"
#include "service/api_ollama.h"
#include "service/api_util.h"
#include "tokenizer/chat_template.h"

namespace onellm {

using Clock = std::chrono::steady_clock;

Service::Service(ServeOptions options) : options_(std::move(options)), started_(Clock::now()) {
  if (options_.config_path.empty()) {
    config_ = std::make_shared<ServiceConfig>(ServiceConfig::development());
    std::fprintf(stderr, "onellm serve: no --config given: development mode, one app 'default', no tokens\n");
  } else {
    config_ = std::make_shared<ServiceConfig>(ServiceConfig::load(options_.config_path));
  }
  if (options_.state_dir.empty()) throw Error("no state directory");
  for (size_t i = 0; i < options_.adapters.size(); ++i) {
    const std::string& name = options_.adapters[i].first;
    const bool plain = !name.empty() && name.size() <= 64 &&
        name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == std::string::npos;
    if (!plain) throw Error("adapter name '" + name + "' must be 1-64 letters, digits, '.', '_' or '-'");
    if (name == model_name()) throw Error("adapter name '" + name + "' is the base model's name");
    for (size_t j = 0; j < i; ++j)
      if (options_.adapters[j].first == name) throw Error("adapter name '" + name + "' is given twice");
  }
  std::filesystem::create_directories(options_.state_dir);
  ::chmod(options_.state_dir.c_str(), 0700);
  store_ = std::make_unique<SessionStore>(options_.state_dir + "/sessions.db");
  scheduler_ = std::make_unique<QosScheduler>(config_);
  scheduler_->set_default_lookup_draft(options_.lookup_draft);
  model();  // load now: readiness means the model is usable
  idle_thread_ = std::thread([this] { idle_unload_loop(); });
}

Service::~Service() {
  stopping_ = true;
  if (idle_thread_.joinable()) idle_thread_.join();
  scheduler_->stop();
}

void Service::drain() { scheduler_->drain(); }

void Service::reload_config() {
  if (options_.config_path.empty()) return;
  try {
    auto fresh = std::make_shared<ServiceConfig>(ServiceConfig::load(options_.config_path));
    // Requests in flight keep the config they were identified under (Caller)
    // and the class they were admitted with; new requests and the
    // scheduler's next tick see the new apps, quotas and objectives.
    std::atomic_store(&config_, fresh);
    scheduler_->set_config(fresh);
    std::fprintf(stderr, "onellm serve: config reloaded (%zu apps, %zu qos classes)\n", fresh->apps.size(),
                 fresh->qos.size());
  } catch (const Error& e) {
    std::fprintf(stderr, "onellm serve: config reload failed, keeping the old one: %s\n", e.what());
  }
}

std::string Service::model_name() const {
  return std::filesystem::path(options_.model_path).stem().string();
}

Service::LoadedModel& Service::model() {
  std::lock_guard<std::mutex> lock(model_mu_);
  last_used_ = Clock::now();
  if (model_) return *model_;
  try {
    auto m = std::make_unique<LoadedModel>();
    m->model = Model::load(options_.model_path);
    m->tokenizer = Tokenizer::from_gguf(m->model->gguf());
    // The adapter's id (name and file hash) tags its KV chunks: a changed
    // file never meets chunks computed with the old one.
    for (const auto& [name, path] : options_.adapters)
      m->adapters[name] = {name + "@" + hex64(hash_file(path)), LoraWeights::load(path, *m->model)};
    m->pool = std::make_unique<ThreadPool>(options_.threads > 0 ? options_.threads : 2);
    std::string source = m->model->gguf().get_string_or("tokenizer.chat_template", "");
    m->chat_template = std::make_unique<ChatTemplate>(source.empty() ? builtin_chat_template("chatml") : source);
    ChatDefaults& d = m->chat_defaults;
    d.copy_bias = options_.copy_bias >= 0 ? options_.copy_bias : recommended_copy_bias(m->model->gguf());
    d.copy_arguments = recommended_copy_arguments(m->model->gguf());
    d.min_call_probability = options_.min_call_probability >= 0
                                 ? options_.min_call_probability
                                 : recommended_min_call_probability(m->model->gguf());
    if (options_.builtin_tools)
      d.builtin_tools = builtin_tool_constraint(m->model->gguf(), tool_call_style(m->chat_template->source()));
    ContextOptions co;
    co.dir = options_.state_dir + "/kv";
    co.budget_bytes = options_.kv_budget;
    co.chunk_tokens = options_.kv_chunk_tokens;
    co.deepest_memory_format = parse_kv_format(options_.kv_compress);
    co.kv_type = options_.kv_type;
    co.disk_format = kv_format_for_cache(options_.kv_type);
    co.always_load = options_.kv_restore == "load";
    m->context = std::make_unique<ContextStore>(*m->model, *m->tokenizer, m->pool.get(), options_.model_path, co);
    remember_model_facts(*m);
    // Last: everything above may read metadata (remember_model_facts lists
    // every key), and reading a released array throws.
    m->model->release_tokenizer_metadata();
    model_ = std::move(m);
    std::fprintf(stderr, "onellm serve: model loaded: %s\n", options_.model_path.c_str());
  } catch (const Error& e) {
    throw ServiceError("MODEL_UNAVAILABLE", std::string("the model cannot be loaded: ") + e.what(), 503, 5);
  }
  return *model_;
}

int64_t Service::keep_alive_ms() const {
  const int64_t asked = ollama_keep_alive_ms_.load();
  if (asked != kConfigKeepAlive) return asked;
  const int64_t config_s = std::atomic_load(&config_)->keep_alive_s;
  return config_s > 0 ? config_s * 1000 : -1;  // the config's 0: never unloaded
}

// Unloads the model keep_alive after the last request ends; the next
// request loads it again.
void Service::idle_unload_loop() {
  while (!stopping_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const int64_t keep = keep_alive_ms();
    if (keep < 0 || in_flight_ > 0) continue;
    SchedulerStats s = scheduler_->stats();
    if (s.running + s.waiting > 0) continue;
    std::scoped_lock lock(model_mu_, slots_mu_);
    if (!model_ || in_flight_ > 0 || Clock::now() - last_used_ < std::chrono::milliseconds(keep)) continue;
    bool busy = false;
    for (auto& [key, slot] : slots_) {
      if (!slot->busy.try_lock()) busy = true;
      else slot->busy.unlock();
    }
    if (busy) continue;
    slots_.clear();
    model_.reset();
    ollama_keep_alive_ms_ = kConfigKeepAlive;  // a request's keep_alive lasts while the model it kept does
    std::fprintf(stderr, "onellm serve: model unloaded after %.1f s idle\n", static_cast<double>(keep) / 1000);
  }
}

Caller Service::identify(const HttpRequest& rq) const {
  std::shared_ptr<ServiceConfig> cfg = std::atomic_load(&config_);
  Caller c;
  c.config = cfg;
  if (cfg->development_mode) {
    c.app = &cfg->apps.front();
    return c;
  }
  if (const std::string* auth = rq.header("authorization")) {
    const std::string prefix = "Bearer ";
    if (auth->compare(0, prefix.size(), prefix) == 0) c.app = cfg->app_for_token(auth->substr(prefix.size()));
    if (c.app == nullptr) throw ServiceError("FORBIDDEN", "the bearer token does not belong to any configured app", 403);
    return c;
  }
  if (rq.peer.transport == PeerIdentity::Transport::kUnix && rq.peer.uid >= 0) {
    c.app = cfg->app_for_uid(rq.peer.uid);
    if (c.app == nullptr)
      throw ServiceError("FORBIDDEN", "unknown app: uid " + std::to_string(rq.peer.uid) + " is not in the config", 403);
    return c;
  }
  throw ServiceError("FORBIDDEN", "no credentials: send 'Authorization: Bearer <app token>'", 401);
}

QosClass Service::qos_for(const Caller& caller, const std::string& requested) const {
  const std::string name = requested.empty() ? caller.app->default_qos : requested;
  const QosClass* q = caller.config->find_qos(name);
  if (q == nullptr) throw api::bad_request("unknown qos class '" + name + "'", "qos");
  const auto& allowed = caller.app->allowed_qos;
  if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), name) == allowed.end())
    throw ServiceError("FORBIDDEN", "app '" + caller.app->id + "' may not use qos class '" + name + "'", 403, 0, "qos");
  return *q;
}

void Service::check_rate(const Caller& caller) {
  const int64_t limit = caller.app->quota.requests_per_minute;
  if (limit <= 0) return;
  std::lock_guard<std::mutex> lock(rate_mu_);
  auto& times = recent_requests_[caller.app->id];
  const auto now = Clock::now();
  while (!times.empty() && now - times.front() > std::chrono::minutes(1)) times.erase(times.begin());
  if (static_cast<int64_t>(times.size()) >= limit) {
    double wait = 60.0 - std::chrono::duration<double>(now - times.front()).count();
    throw ServiceError("QUOTA_EXCEEDED", "app '" + caller.app->id + "' is over its " + std::to_string(limit) +
                                             " requests per minute", 429, std::max(1.0, wait));
  }
  times.push_back(now);
}

void Service::check_tokens(const Caller& caller, size_t prompt_tokens, int64_t max_tokens) {
  const int64_t limit = caller.app->quota.tokens_per_day;
  if (limit <= 0) return;
  const int64_t used = store_->usage_today(caller.app->id);
  if (used + static_cast<int64_t>(prompt_tokens) > limit)
    throw ServiceError("QUOTA_EXCEEDED", "app '" + caller.app->id + "' has used " + std::to_string(used) + " of its " +
                                             std::to_string(limit) + " tokens today", 429, 3600);
  (void)max_tokens;
}

void Service::handle(const HttpRequest& rq, HttpResponse& rs) {
  requests_total_++;
  const auto t0 = Clock::now();
  std::string app_id = "-";
  // One structured line per request: who, what, outcome, time. Never the
  // prompt or the output.
  struct LogLine {
    const HttpRequest& rq;
    const HttpResponse& rs;
    const std::string& app;
    Clock::time_point t0;
    ~LogLine() {
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      std::fprintf(stderr, "{\"event\":\"request\",\"app\":\"%s\",\"transport\":\"%s\",\"method\":\"%s\",\"path\":\"%s\",\"status\":%d,\"ms\":%.1f}\n",
                   app.c_str(), rq.peer.transport == PeerIdentity::Transport::kUnix ? "unix" : "tcp",
                   api::safe_text(rq.method).substr(1, api::safe_text(rq.method).size() - 2).c_str(),
                   api::safe_text(rq.path).substr(1, api::safe_text(rq.path).size() - 2).c_str(), rs.status(), ms);
    }
  } log_line{rq, rs, app_id, t0};
  const bool ollama = rq.path.rfind("/api/", 0) == 0;  // Ollama's API answers errors in its own shape
  try {
    const std::string& p = rq.path;
    if (p == "/health") {
      api::send_json(rs, 200, {{"status", "ok"}});
      return;
    }
    if (p == "/metrics") return metrics(rs);
    if (p == "/" && (rq.method == "GET" || rq.method == "HEAD")) {  // Ollama's clients probe it
      rs.send(200, "text/plain; charset=utf-8", "onellm is running (OpenAI API at /v1, Ollama API at /api)\n");
      return;
    }
    Caller caller = identify(rq);
    app_id = caller.app->id;
    // Held while the request is handled, so that the idle unload never frees
    // the model under a handler; the end of a request that used the model
    // (model() stamped last_used_) is its last use. Listings (/api/ps) are not.
    struct InFlight {
      Service& s;
      Clock::time_point start = Clock::now();
      explicit InFlight(Service& service) : s(service) { s.in_flight_++; }
      ~InFlight() {
        std::lock_guard<std::mutex> lock(s.model_mu_);
        if (s.last_used_ >= start) s.last_used_ = Clock::now();
        s.in_flight_--;
      }
    } in_flight{*this};
    if (p == "/v1/status" && rq.method == "GET") return status(rs);
    if (p == "/v1/models" && rq.method == "GET") {
      const int64_t created = static_cast<int64_t>(api::unix_now());
      api::Json data = api::Json::array({{{"id", model_name()}, {"object", "model"}, {"created", created},
                                          {"owned_by", "onellm"}}});
      for (const auto& [name, path] : options_.adapters)  // as vLLM lists LoRA modules
        data.push_back({{"id", name}, {"object", "model"}, {"created", created}, {"owned_by", "onellm"},
                        {"parent", model_name()}, {"root", path}});
      api::send_json(rs, 200, {{"object", "list"}, {"data", data}});
      return;
    }
    if (p == "/v1/chat/completions" && rq.method == "POST") return chat_completions(caller, rq, rs);
    if (p == "/v1/completions" && rq.method == "POST") return completions(caller, rq, rs);
    // Also at llama-server's paths, for its clients.
    if ((p == "/v1/tokenize" || p == "/tokenize") && rq.method == "POST") return tokenize(caller, rq, rs);
    if ((p == "/v1/detokenize" || p == "/detokenize") && rq.method == "POST") return detokenize(caller, rq, rs);
    if (p == "/v1/embeddings" && rq.method == "POST") return embeddings(caller, rq, rs);
    if ((p == "/completion" || p == "/completions") && rq.method == "POST")
      return native_completion(caller, rq, rs, false);
    if (p == "/infill" && rq.method == "POST") return native_completion(caller, rq, rs, true);
    if (p == "/props" && rq.method == "GET") return native_props(caller, rs);
    if (p == "/apply-template" && rq.method == "POST") return apply_template(rq, rs);
    if ((p == "/props" && rq.method == "POST") || p == "/slots")
      throw ServiceError("NOT_SUPPORTED",
                         p + ": onellm has no fixed slots or global settings to change; the scheduler's queue and "
                             "running requests are in GET /v1/status, and each request carries its own settings",
                         501);
    if (p == "/v1/sessions" || p.rfind("/v1/sessions/", 0) == 0) return sessions_api(caller, rq, rs);
    if (ollama) return ollama_api(caller, rq, rs);
    api::send_json(rs, 404, {{"error", {{"message", "no route for " + rq.method + " " + p}, {"type", "invalid_request_error"},
                                        {"code", "NOT_FOUND"}, {"param", nullptr}}}});
  } catch (const ServiceError& e) {
    errors_total_++;
    ollama ? send_ollama_error(rs, e) : api::send_error(rs, e);
  } catch (const Error& e) {
    errors_total_++;
    ollama ? send_ollama_error(rs, api::bad_request(e.what())) : api::send_error(rs, api::bad_request(e.what()));
  } catch (const nlohmann::json::exception& e) {  // a request field of an unexpected type that no reader named
    errors_total_++;
    const ServiceError bad = api::bad_request(std::string("malformed request: ") + e.what());
    ollama ? send_ollama_error(rs, bad) : api::send_error(rs, bad);
  }
}

// The lock that keeps a session to one request at a time.
std::shared_ptr<Service::SessionSlot> Service::session_slot(const Caller& caller, const std::string& session_id) {
  std::lock_guard<std::mutex> lock(slots_mu_);
  auto& slot = slots_[caller.app->id + '\0' + session_id];
  if (!slot) slot = std::make_shared<SessionSlot>();
  slot->last_used = Clock::now();
  return slot;
}

void Service::forget_session(const Caller& caller, const std::string& session_id) {
  {
    std::lock_guard<std::mutex> lock(slots_mu_);
    slots_.erase(caller.app->id + '\0' + session_id);
  }
  std::lock_guard<std::mutex> lock(model_mu_);
  if (model_) model_->context->forget(caller.app->id, session_id);
}

// How many leading prompt tokens come from a prefix the config declares
// public: a public system prompt rendered alone, as far as it agrees with
// the prompt. Those tokens carry nothing of the app, so their KV chunks are
// shared by every app.
int64_t Service::public_prefix_tokens(LoadedModel& m, const std::vector<int32_t>& prompt) const {
  int64_t best = 0;
  for (const std::string& text : std::atomic_load(&config_)->public_prefixes) {
    ChatTemplateOptions o;
    o.add_generation_prompt = false;
    const std::vector<int32_t> t = chat_prompt_tokens(*m.tokenizer, *m.chat_template, {{"system", text, ChatJson::object()}}, o);
    int64_t common = 0;
    while (common < static_cast<int64_t>(std::min(t.size(), prompt.size())) &&
           t[static_cast<size_t>(common)] == prompt[static_cast<size_t>(common)])
      ++common;
    best = std::max(best, common);
  }
  return best;
}

SessionAdapter Service::adapter_named(LoadedModel& m, const std::string& name, const char* param) const {
  if (name.empty()) return {};
  auto found = m.adapters.find(name);
  if (found != m.adapters.end()) return found->second;
  std::string served;
  for (const auto& [served_name, adapter] : m.adapters) served += (served.empty() ? "" : ", ") + served_name;
  throw api::bad_request("unknown adapter '" + name + "'; this daemon serves " +
                             (served.empty() ? std::string("none (serve --lora NAME=FILE)") : served),
                         param);
}

// A scratch session of this app for a stateless request: the free one whose
// last prompt shares the longest prefix with this one (system prompts,
// earlier turns) under the same adapter, leased from the context store so
// its KV counts against the budget like any session's and is parked under
// pressure, but never written to disk. Locked for the caller; never shared
// across apps.
std::unique_ptr<SessionLease> Service::scratch_lease(const Caller& caller, const std::vector<int32_t>& prompt,
                                                     int priority, int64_t max_tokens,
                                                     const SessionAdapter& adapter,
                                                     std::unique_lock<std::mutex>& hold) {
  LoadedModel& m = model();
  // Up to max_running scratch sessions per app, made when needed.
  const int kScratchPerApp = static_cast<int>(std::max<int64_t>(1, caller.config->max_running));
  std::shared_ptr<SessionSlot> best;
  std::string best_name;
  {
    std::lock_guard<std::mutex> lock(slots_mu_);
    size_t best_common = 0;
    for (int i = 0; i < kScratchPerApp; ++i) {
      // \x03 cannot appear in a session id the API hands out.
      const std::string name = "\x03scratch" + std::to_string(i);
      auto& slot = slots_[caller.app->id + '\0' + name];
      if (!slot) slot = std::make_shared<SessionSlot>();
      std::unique_lock<std::mutex> try_hold(slot->busy, std::try_to_lock);
      if (!try_hold.owns_lock()) continue;
      size_t common = 0;
      const auto& t = slot->last_prompt;
      while (slot->adapter == adapter.id && common < t.size() && common < prompt.size() && t[common] == prompt[common])
        ++common;
      if (!best || common > best_common) {
        best = slot;
        best_name = name;
        best_common = common;
      }
      if (t.empty()) break;  // an unused slot: later ones are unused too
    }
    if (!best)
      throw ServiceError("BUSY", "app '" + caller.app->id + "' already has requests running on all its slots", 429, 1);
    hold = std::unique_lock<std::mutex>(best->busy);
    best->last_prompt = prompt;
    best->adapter = adapter.id;
    best->last_used = Clock::now();
  }
  const int64_t n_ctx = caller.context_tokens();
  return std::make_unique<SessionLease>(*m.context, caller.app->id, best_name, priority, n_ctx, prompt,
                                        // no max_tokens: room up to the whole context
                                        max_tokens < 0 ? n_ctx : static_cast<int64_t>(prompt.size()) + max_tokens,
                                        nullptr, public_prefix_tokens(m, prompt), true, adapter);
}

}  // namespace onellm
