// /v1/tokenize, /v1/status and Prometheus /metrics. Nothing here carries
// prompt or output text.
#include <sys/resource.h>

#include "service/api_util.h"
#include "service/service.h"

namespace onellm {

using api::Json;

void Service::tokenize(const Caller& c, const HttpRequest& rq, HttpResponse& rs) {
  Json body = api::parse_body(rq);
  auto text = body.find("content");
  if (text == body.end()) text = body.find("text");
  if (text == body.end() || !text->is_string()) throw api::bad_request("'content' must be a string", "content");
  LoadedModel& m = model();
  std::vector<int32_t> ids = m.tokenizer->encode(text->get<std::string>(), api::bool_field(body, "add_special", false),
                                                 api::bool_field(body, "parse_special", false));
  api::send_json(rs, 200, {{"tokens", ids}, {"count", ids.size()}});
  (void)c;
}

// llama-server's /detokenize: {"tokens": [ids]} -> {"content": text}, special
// tokens written as their text.
void Service::detokenize(const Caller& c, const HttpRequest& rq, HttpResponse& rs) {
  Json body = api::parse_body(rq);
  auto ids = body.find("tokens");
  if (ids == body.end() || !ids->is_array()) throw api::bad_request("'tokens' must be an array of token ids", "tokens");
  LoadedModel& m = model();
  const std::vector<int32_t> tokens = api::read_token_ids(*ids, m.tokenizer->n_vocab(), "tokens");
  api::send_json(rs, 200, {{"content", m.tokenizer->decode(tokens, false, true)}});  // invalid UTF-8 -> U+FFFD
  (void)c;
}

void Service::status(HttpResponse& rs) {
  SchedulerStats s = scheduler_->stats();
  bool loaded;
  {
    std::lock_guard<std::mutex> lock(model_mu_);
    loaded = model_ != nullptr;
  }
  Json qos_classes = Json::array();
  for (const QosClass& q : std::atomic_load(&config_)->qos)
    qos_classes.push_back({{"name", q.name}, {"ttft_ms", q.ttft_ms}, {"tpot_ms", q.tpot_ms}, {"priority", q.priority}});
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  Json context = nullptr;
  {
    std::lock_guard<std::mutex> lock(model_mu_);
    if (model_) {
      ContextStats c = model_->context->stats();
      context = {{"budget_bytes", c.budget_bytes}, {"used_bytes", c.used_bytes}, {"peak_bytes", c.peak_bytes},
                 {"live_sessions", c.live_sessions}, {"memory_chunks", c.memory_chunks},
                 {"kv_type", tensor_type_info(options_.kv_type).name},
                 {"memory_chunks_int8", c.chunks_by_format[static_cast<int>(KvFormat::kInt8)]},
                 {"memory_chunks_int4", c.chunks_by_format[static_cast<int>(KvFormat::kInt4)]},
                 {"memory_chunks_int2", c.chunks_by_format[static_cast<int>(KvFormat::kInt2)]},
                 {"disk_chunks", c.disk_chunks}, {"disk_bytes", c.disk_bytes}, {"pending_writes", c.pending_writes},
                 {"chunks_written", c.chunks_written}, {"write_errors", c.write_errors},
                 {"chunks_corrupt", c.chunks_corrupt}, {"chunks_discarded", c.chunks_discarded},
                 {"disk_bytes_read", c.disk_bytes_read}, {"last_error", c.last_error}, {"over_budget", c.over_budget},
                 {"waits_for_checkin", c.waits_for_checkin},
                 {"load_ms_per_mb", c.costs.load_ms_per_mb}, {"recompute_ms_per_token", c.costs.recompute_ms_per_token}};
    }
  }
  Json adapters = Json::array();
  for (const auto& [name, path] : options_.adapters) adapters.push_back({{"name", name}, {"path", path}});
  api::send_json(rs, 200,
                 {{"model", model_name()},
                  {"adapters", adapters},
                  {"model_path", options_.model_path},
                  {"load_state", loaded ? "loaded" : "unloaded"},
                  {"uptime_s", std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count()},
                  {"queue", {{"waiting", s.waiting}, {"running", s.running}}},
                  {"completed", s.completed},
                  {"rejected", s.rejected},
                  {"cancelled", s.cancelled},
                  {"prefill_ms_per_token", s.prefill_ms_per_token},
                  {"decode_ms_per_step", s.decode_ms_per_step},
                  {"decode_passes", s.decode_passes},
                  {"max_decode_batch", s.max_decode_batch},
                  {"memory", {{"peak_rss_bytes", static_cast<int64_t>(ru.ru_maxrss) * 1024}}},
                  {"context", context},
                  {"development_mode", std::atomic_load(&config_)->development_mode},
                  {"qos", qos_classes}});
}

void Service::metrics(HttpResponse& rs) {
  SchedulerStats s = scheduler_->stats();
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, double value) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
           std::to_string(value) + "\n";
  };
  metric("onellm_requests_total", "counter", "HTTP requests received", static_cast<double>(requests_total_.load()));
  metric("onellm_errors_total", "counter", "requests answered with an error", static_cast<double>(errors_total_.load()));
  metric("onellm_completed_total", "counter", "generations completed", static_cast<double>(s.completed));
  metric("onellm_rejected_total", "counter", "generations rejected as BUSY", static_cast<double>(s.rejected));
  metric("onellm_cancelled_total", "counter", "generations cancelled", static_cast<double>(s.cancelled));
  metric("onellm_queue_waiting", "gauge", "requests waiting", static_cast<double>(s.waiting));
  metric("onellm_queue_running", "gauge", "requests running", static_cast<double>(s.running));
  metric("onellm_prompt_tokens_total", "counter", "prompt tokens evaluated", static_cast<double>(s.prompt_tokens));
  metric("onellm_generated_tokens_total", "counter", "tokens generated", static_cast<double>(s.generated_tokens));
  rs.send(200, "text/plain; version=0.0.4", out);
}

}  // namespace onellm
