#include "service/session_store.h"

#include <sqlite3.h>

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

// A prepared statement that finalizes itself.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK)
      throw Error(std::string("session store: ") + sqlite3_errmsg(db));
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement& bind(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& bind(int i, double v) {
    sqlite3_bind_double(stmt_, i, v);
    return *this;
  }
  Statement& bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw Error(std::string("session store: ") + sqlite3_errmsg(db_));
  }
  std::string text(int col) const {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p),
                                                      static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  double real(int col) const { return sqlite3_column_double(stmt_, col); }
  int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

constexpr const char* kColumns = "id, app, name, instructions, qos, created, updated, messages";

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
  return r;
}

}  // namespace

SessionStore::SessionStore(const std::string& path) : path_(path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error(path + ": cannot open the session database: " + msg);
  }
  sqlite3_busy_timeout(db_, 5000);
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=NORMAL");
  exec("CREATE TABLE IF NOT EXISTS sessions(id TEXT PRIMARY KEY, app TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',"
       " instructions TEXT NOT NULL DEFAULT '', qos TEXT NOT NULL, created REAL, updated REAL,"
       " messages TEXT NOT NULL DEFAULT '[]')");
  exec("CREATE INDEX IF NOT EXISTS sessions_by_app ON sessions(app, name)");
  exec("CREATE TABLE IF NOT EXISTS usage(app TEXT NOT NULL, day TEXT NOT NULL, tokens INTEGER NOT NULL,"
       " PRIMARY KEY(app, day))");
}

SessionStore::~SessionStore() { sqlite3_close(db_); }

void SessionStore::exec(const char* sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err != nullptr ? err : "unknown error";
    sqlite3_free(err);
    throw Error(path_ + ": session database: " + msg);
  }
}

SessionRecord SessionStore::create(const std::string& app, const std::string& name, const std::string& instructions,
                                   const std::string& qos) {
  std::lock_guard<std::mutex> lock(mu_);
  SessionRecord r;
  r.id = random_id();
  r.app = app;
  r.name = name;
  r.instructions = instructions;
  r.qos = qos;
  r.created = r.updated = now_seconds();
  Statement s(db_, "INSERT INTO sessions(id, app, name, instructions, qos, created, updated, messages)"
                   " VALUES(?, ?, ?, ?, ?, ?, ?, '[]')");
  s.bind(1, r.id).bind(2, app).bind(3, name).bind(4, instructions).bind(5, qos).bind(6, r.created).bind(7, r.updated);
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
  return sqlite3_changes(db_) > 0;
}

void SessionStore::append(const std::string& app, const std::string& id, const nlohmann::ordered_json& messages) {
  std::lock_guard<std::mutex> lock(mu_);
  exec("BEGIN IMMEDIATE");
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
    exec("COMMIT");
  } catch (...) {
    exec("ROLLBACK");
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
