// Persistent sessions: each app's named conversations (instructions, QoS
// class, adapter, message history) in SQLite with WAL, so they survive app kills and
// daemon restarts. Every call takes the owning app: one app can never see,
// change or delete another app's session.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/sqlite_db.h"

namespace onellm {

struct SessionRecord {
  std::string id, app, name, instructions, qos;
  std::string adapter;  // the LoRA adapter it runs with ("" = the base model), for its whole life
  double created = 0, updated = 0;  // unix seconds
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // [{"role","content"}...]
};

class SessionStore {
 public:
  // path ":memory:" keeps everything in memory. Throws Error naming the path.
  explicit SessionStore(const std::string& path);
  ~SessionStore();
  SessionStore(const SessionStore&) = delete;
  SessionStore& operator=(const SessionStore&) = delete;

  SessionRecord create(const std::string& app, const std::string& name, const std::string& instructions,
                       const std::string& qos, const std::string& adapter = "");
  std::optional<SessionRecord> get(const std::string& app, const std::string& id_or_name) const;
  std::vector<SessionRecord> list(const std::string& app) const;
  int64_t count(const std::string& app) const;
  bool remove(const std::string& app, const std::string& id);
  // Appends messages to the history (atomically with the update time).
  void append(const std::string& app, const std::string& id, const nlohmann::ordered_json& messages);

  // Tokens used per app and UTC day, for the tokens_per_day quota.
  void add_usage(const std::string& app, int64_t tokens);
  int64_t usage_today(const std::string& app) const;

 private:
  SqliteDb db_;
  mutable std::mutex mu_;
};

}  // namespace onellm
