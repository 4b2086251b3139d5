// The service configuration: apps, how they are identified, what they may
// use, and the latency objectives of each QoS class. Loaded from TOML.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace onellm {

struct QosClass {
  std::string name;
  double ttft_ms = 1000;  // time-to-first-token objective
  double tpot_ms = 200;   // time-per-output-token objective
  int priority = 0;       // higher runs first and preempts lower
};

struct AppQuota {
  int64_t requests_per_minute = 0;  // 0: unlimited
  int64_t tokens_per_day = 0;
  int64_t max_sessions = 0;
  int64_t max_context = 0;  // tokens per session / request; 0: the service default
};

struct AppConfig {
  std::string id;
  std::vector<int64_t> uids;  // Unix peers with these uids are this app
  std::string token;          // bearer token for HTTP (and Unix peers without a uid match)
  std::vector<std::string> allowed_qos;  // empty: all
  std::string default_qos = "chat";
  AppQuota quota;
  bool foreground = true;
};

struct ServiceConfig {
  std::vector<QosClass> qos;
  std::vector<AppConfig> apps;
  bool development_mode = false;  // no config file: one default app, no tokens
  int64_t keep_alive_s = 300;     // unload the model after this long idle (0: never)
  int64_t default_context = 2048;
  int64_t prefill_chunk = 128;    // smallest prompt chunk worth a pass of its own (chunks grow to 512 when objectives allow)
  int64_t max_running = 16;       // requests decoding at once
  int64_t max_queue = 64;         // waiting requests before BUSY
  int64_t max_sessions_in_memory = 8;
  std::vector<std::string> public_prefixes;

  // Throws Error naming the file, line and key.
  static ServiceConfig load(const std::string& path);
  static ServiceConfig from_toml(const std::string& text, const std::string& name);
  static ServiceConfig development();
  static std::vector<QosClass> default_qos_classes();

  const QosClass* find_qos(const std::string& name) const;
  const AppConfig* find_app(const std::string& id) const;
  const AppConfig* app_for_uid(int64_t uid) const;
  const AppConfig* app_for_token(const std::string& token) const;
};

}  // namespace onellm
