#include "service/session_store.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <random>

#include "base/error.h"

namespace onellm {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string utc_day() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

std::string random_id() {
  unsigned char bytes[12];
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  if (!urandom.read(reinterpret_cast<char*>(bytes), sizeof bytes)) {
    std::random_device rd;
    for (unsigned char& b : bytes) b = static_cast<unsigned char>(rd());
  }
  std::string id = "sess_";
  char hex[3];
  for (unsigned char b : bytes) {
    std::snprintf(hex, sizeof hex, "%02x", b);
    id += hex;
  }
  return id;
}

using Statement = SqliteStatement;

constexpr const char* kColumns = "id, app, name, instructions, qos, created, updated, messages, adapter";

SessionRecord read_record(const Statement& s) {
  SessionRecord r;
  r.id = s.text(0);
  r.app = s.text(1);
  r.name = s.text(2);
  r.instructions = s.text(3);
  r.qos = s.text(4);
  r.created = s.real(5);
  r.updated = s.real(6);
  r.messages = nlohmann::ordered_json::parse(s.text(7), nullptr, false);
  if (r.messages.is_discarded() || !r.messages.is_array()) r.messages = nlohmann::ordered_json::array();
  r.adapter = s.text(8);
  return r;
}

}  // namespace

SessionStore::SessionStore(const std::string& path) : db_(path, "session database") {
  db_.exec("CREATE TABLE IF NOT EXISTS sessions(id TEXT PRIMARY KEY, app TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',"
       " instructions TEXT NOT NULL DEFAULT '', qos TEXT NOT NULL, created REAL, updated REAL,"
       " messages TEXT NOT NULL DEFAULT '[]', adapter TEXT NOT NULL DEFAULT '')");
  // Databases of earlier versions lack the adapter column: their sessions
  // ran on the base model.
  bool has_adapter = false;
  for (Statement columns(db_, "PRAGMA table_info(sessions)"); columns.step();) has_adapter |= columns.text(1) == "adapter";
  if (!has_adapter) db_.exec("ALTER TABLE sessions ADD COLUMN adapter TEXT NOT NULL DEFAULT ''");
  db_.exec("CREATE INDEX IF NOT EXISTS sessions_by_app ON sessions(app, name)");
  db_.exec("CREATE TABLE IF NOT EXISTS usage(app TEXT NOT NULL, day TEXT NOT NULL, tokens INTEGER NOT NULL,"
       " PRIMARY KEY(app, day))");
}

SessionStore::~SessionStore() = default;

SessionRecord SessionStore::create(const std::string& app, const std::string& name, const std::string& instructions,
                                   const std::string& qos, const std::string& adapter) {
  std::lock_guard<std::mutex> lock(mu_);
  SessionRecord r;
  r.id = random_id();
  r.app = app;
  r.name = name;
  r.instructions = instructions;
  r.qos = qos;
  r.adapter = adapter;
  r.created = r.updated = now_seconds();
  Statement s(db_, "INSERT INTO sessions(id, app, name, instructions, qos, created, updated, messages, adapter)"
                   " VALUES(?, ?, ?, ?, ?, ?, ?, '[]', ?)");
  s.bind(1, r.id).bind(2, app).bind(3, name).bind(4, instructions).bind(5, qos).bind(6, r.created).bind(7, r.updated)
      .bind(8, adapter);
  s.step();
  return r;
}

std::optional<SessionRecord> SessionStore::get(const std::string& app, const std::string& id_or_name) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string sql = std::string("SELECT ") + kColumns +
                    " FROM sessions WHERE app = ? AND (id = ? OR (name != '' AND name = ?)) ORDER BY id = ? DESC,"
                    " updated DESC LIMIT 1";
  Statement s(db_, sql.c_str());
  s.bind(1, app).bind(2, id_or_name).bind(3, id_or_name).bind(4, id_or_name);
  if (!s.step()) return std::nullopt;
  return read_record(s);
}

std::vector<SessionRecord> SessionStore::list(const std::string& app) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string sql = std::string("SELECT ") + kColumns + " FROM sessions WHERE app = ? ORDER BY created";
  Statement s(db_, sql.c_str());
  s.bind(1, app);
  std::vector<SessionRecord> out;
  while (s.step()) out.push_back(read_record(s));
  return out;
}

int64_t SessionStore::count(const std::string& app) const {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, "SELECT COUNT(*) FROM sessions WHERE app = ?");
  s.bind(1, app);
  return s.step() ? s.integer(0) : 0;
}

bool SessionStore::remove(const std::string& app, const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, "DELETE FROM sessions WHERE app = ? AND id = ?");
  s.bind(1, app).bind(2, id);
  s.step();
  return db_.changes() > 0;
}

void SessionStore::append(const std::string& app, const std::string& id, const nlohmann::ordered_json& messages) {
  std::lock_guard<std::mutex> lock(mu_);
  db_.exec("BEGIN IMMEDIATE");
  try {
    Statement read(db_, "SELECT messages FROM sessions WHERE app = ? AND id = ?");
    read.bind(1, app).bind(2, id);
    if (!read.step()) throw Error("session '" + id + "' does not exist");
    nlohmann::ordered_json all = nlohmann::ordered_json::parse(read.text(0), nullptr, false);
    if (!all.is_array()) all = nlohmann::ordered_json::array();
    for (const auto& m : messages) all.push_back(m);
    Statement write(db_, "UPDATE sessions SET messages = ?, updated = ? WHERE app = ? AND id = ?");
    write.bind(1, all.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace)).bind(2, now_seconds()).bind(3, app).bind(4, id);
    write.step();
    db_.exec("COMMIT");
  } catch (...) {
    db_.exec("ROLLBACK");
    throw;
  }
}

void SessionStore::add_usage(const std::string& app, int64_t tokens) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, "INSERT INTO usage(app, day, tokens) VALUES(?, ?, ?)"
                   " ON CONFLICT(app, day) DO UPDATE SET tokens = tokens + excluded.tokens");
  s.bind(1, app).bind(2, utc_day()).bind(3, tokens);
  s.step();
}

int64_t SessionStore::usage_today(const std::string& app) const {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, "SELECT tokens FROM usage WHERE app = ? AND day = ?");
  s.bind(1, app).bind(2, utc_day());
  return s.step() ? s.integer(0) : 0;
}

}  // namespace onellm
