// The service layer: `onellm serve` — one model shared by many apps over a
// Unix socket (identity from SO_PEERCRED) and loopback HTTP (bearer tokens),
// with OpenAI-compatible and native session APIs, a QoS scheduler, quotas,
// and persistent per-app sessions.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "context/context.h"
#include "engine/engine.h"
#include "service/http_server.h"
#include "service/output_constraint.h"
#include "service/qos_scheduler.h"
#include "service/service_config.h"
#include "service/session_store.h"

namespace onellm {

struct ServeOptions {
  std::string model_path;
  std::string config_path;  // empty: development mode
  std::string state_dir;
  int threads = 0;
  bool log_content = false;  // prompts/outputs in logs only when asked
  uint64_t kv_budget = 256ull << 20;  // KV memory of all sessions (context layer)
  int64_t kv_chunk_tokens = 32;
  std::string kv_compress = "int4";  // deepest in-memory KV format (rarely attended chunks) before disk
  TensorType kv_type = TensorType::F16;  // live KV caches
  // Restoring a chunk that is on disk: "auto" loads it when loading is
  // cheaper than recomputing (measured at start-up), "load" always does.
  std::string kv_restore = "auto";
  // LoRA adapters served beside the base model (serve --lora NAME=FILE):
  // sessions and requests name one; the base weights stay shared.
  std::vector<std::pair<std::string, std::string>> adapters;  // name, file
  // Default "copy_bias" of chat requests (engine/copy_bias.h); < 0: the
  // model's own (onellm.copy_bias), else none.
  float copy_bias = -1;
  // Default "min_call_probability" of chat requests (engine/call_gate.h);
  // < 0: the model's own (onellm.min_call_probability), else none.
  float min_call_probability = -1;
  // Prompt-lookup decoding for requests that do not set "lookup_draft" (0: off).
  int32_t lookup_draft = 0;
  // Hold calls of requests without tools to the model's built-in tools
  // (onellm.builtin_tools, engine/tool_calls.h); serve --no-builtin-tools.
  bool builtin_tools = true;
};

struct CompletionJob;
struct InfillInput;

// Who is calling: the app, resolved from the transport.
struct Caller {
  const AppConfig* app = nullptr;                 // points into `config`
  std::shared_ptr<const ServiceConfig> config;   // the config the request was identified under (kept alive)
  // The context (tokens) the app's sequences get: its quota's, else the service's default.
  int64_t context_tokens() const {
    return app->quota.max_context > 0 ? app->quota.max_context : config->default_context;
  }
};

class Service {
 public:
  explicit Service(ServeOptions options);
  ~Service();

  // The HTTP entry point (both transports).
  void handle(const HttpRequest& request, HttpResponse& response);
  // Re-reads the config file (SIGHUP). Keeps the old one on error.
  void reload_config();
  void drain();
  std::shared_ptr<const ServiceConfig> config() const { return std::atomic_load(&config_); }
  std::string model_name() const;

 private:
  struct LoadedModel {
    std::unique_ptr<Model> model;
    std::unique_ptr<Tokenizer> tokenizer;
    std::unique_ptr<ThreadPool> pool;
    std::unique_ptr<ChatTemplate> chat_template;
    std::unique_ptr<ContextStore> context;  // sessions' KV; destroyed before the model it uses
    std::map<std::string, SessionAdapter> adapters;  // by name
    ChatDefaults chat_defaults;  // the model's decoding settings and built-in tools
  };
  // A sequence (KV cache) owned by one app: a session's, or a scratch one
  // for stateless requests. `busy` is held while a request runs on it.
  struct SessionSlot {
    std::mutex busy;
    std::vector<int32_t> last_prompt;  // scratch slots: picks the one sharing the longest prefix
    std::string adapter;               // ... computed with the same adapter
    std::chrono::steady_clock::time_point last_used;
  };

  Caller identify(const HttpRequest& request) const;
  LoadedModel& model();  // loads on demand (MODEL_UNAVAILABLE on failure)
  void idle_unload_loop();
  // How long the model stays loaded after its last request, in ms; -1: until the daemon stops.
  int64_t keep_alive_ms() const;
  QosClass qos_for(const Caller& caller, const std::string& requested) const;
  void check_rate(const Caller& caller);
  void check_tokens(const Caller& caller, size_t prompt_tokens, int64_t max_tokens);
  std::shared_ptr<SessionSlot> session_slot(const Caller& caller, const std::string& session_id);
  void forget_session(const Caller& caller, const std::string& session_id);
  int64_t public_prefix_tokens(LoadedModel& m, const std::vector<int32_t>& prompt) const;
  // The adapter named `name` ("" = none); unknown names are a bad request
  // that lists the served ones.
  SessionAdapter adapter_named(LoadedModel& m, const std::string& name, const char* param) const;
  std::unique_ptr<SessionLease> scratch_lease(const Caller& caller, const std::vector<int32_t>& prompt,
                                              int priority, int64_t max_tokens, const SessionAdapter& adapter,
                                              std::unique_lock<std::mutex>& hold);

  void submit_completion(const Caller& c, const nlohmann::ordered_json& body, CompletionJob& job,
                         HttpResponse& rs);
  void chat_completions(const Caller& c, const HttpRequest& rq, HttpResponse& rs);
  void completions(const Caller& c, const HttpRequest& rq, HttpResponse& rs);
  void sessions_api(const Caller& c, const HttpRequest& rq, HttpResponse& rs);
  void session_message(const Caller& c, const std::string& id, const HttpRequest& rq, HttpResponse& rs);
  void tokenize(const Caller& c, const HttpRequest& rq, HttpResponse& rs);
  void detokenize(const Caller& c, const HttpRequest& rq, HttpResponse& rs);
  void embeddings(const Caller& c, const HttpRequest& rq, HttpResponse& rs);
  struct EmbedOptions {
    Pooling pooling = Pooling::kMean;
    bool normalize = true;  // L2, after the cut to `dims`
    int64_t dims = 0;       // the first values kept (n_embd: all)
    bool truncate = false;  // cut inputs longer than the context instead of CONTEXT_TOO_LONG naming `param`
    const char* param = "input";
    size_t* evaluated = nullptr;  // set to the tokens embedded (after any cut)
  };
  // Embeds each input in the app's class q, counted in its usage. False when
  // the client went away.
  bool embed_inputs(const Caller& c, const QosClass& q, std::vector<std::vector<int32_t>> inputs,
                    const EmbedOptions& options, HttpResponse& rs, std::vector<std::vector<float>>& vectors);
  // llama-server's /completion and /infill, /props and /apply-template (api_native.cpp).
  void native_completion(const Caller& c, const HttpRequest& rq, HttpResponse& rs, bool infill);
  void native_props(const Caller& c, HttpResponse& rs);
  void apply_template(const HttpRequest& rq, HttpResponse& rs);
  // A fill-in-the-middle prompt that leaves room for max_tokens in the
  // app's context; BAD_REQUEST naming `param` for a model without FIM tokens.
  std::vector<int32_t> infill_prompt(const Caller& c, const InfillInput& input, int64_t max_tokens, const char* param);
  // Ollama's API (/api/*): api_ollama.cpp and api_ollama_models.cpp.
  void ollama_api(const Caller& c, const HttpRequest& rq, HttpResponse& rs);
  void ollama_generate(const Caller& c, const HttpRequest& rq, HttpResponse& rs, bool chat);
  void ollama_embed(const Caller& c, const HttpRequest& rq, HttpResponse& rs, bool legacy);
  void ollama_tags(HttpResponse& rs, bool running);
  void ollama_show(const HttpRequest& rq, HttpResponse& rs);
  nlohmann::ordered_json ollama_model_entry(const std::string& name, const std::string& parent);
  void remember_model_facts(const LoadedModel& m);  // into model_facts_, under model_mu_
  void status(HttpResponse& rs);
  void metrics(HttpResponse& rs);

  ServeOptions options_;
  std::shared_ptr<ServiceConfig> config_;
  std::unique_ptr<SessionStore> store_;
  std::unique_ptr<QosScheduler> scheduler_;
  std::mutex model_mu_;
  std::unique_ptr<LoadedModel> model_;
  nlohmann::ordered_json model_facts_;  // size, digest, details... of the file, from its first load
  std::chrono::steady_clock::time_point last_used_;
  std::mutex slots_mu_;
  std::map<std::string, std::shared_ptr<SessionSlot>> slots_;  // key: app + '\0' + session id or scratch name
  std::mutex rate_mu_;
  std::map<std::string, std::vector<std::chrono::steady_clock::time_point>> recent_requests_;
  std::atomic<int64_t> requests_total_{0}, errors_total_{0};
  std::atomic<bool> stopping_{false};
  std::thread idle_thread_;
  std::chrono::steady_clock::time_point started_;
  // The last Ollama request's keep_alive (ms, -1: forever), which holds until
  // the model is unloaded, as in Ollama; kConfigKeepAlive: the config's.
  static constexpr int64_t kConfigKeepAlive = INT64_MIN;
  std::atomic<int64_t> ollama_keep_alive_ms_{kConfigKeepAlive};
  std::atomic<int> in_flight_{0};  // app requests being handled: the model is never unloaded under one
};

}  // namespace onellm
