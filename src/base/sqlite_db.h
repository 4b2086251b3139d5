// A SQLite database opened in WAL mode and prepared statements that finalize
// themselves: the session store and the KV chunk store share these. Errors
// are onellm::Error naming the database.
#pragma once

#include <cstdint>
#include <string>

struct sqlite3;
struct sqlite3_stmt;

namespace onellm {

class SqliteDb {
 public:
  // Opens (creates) `path` with WAL and synchronous=NORMAL; `what` names it in errors.
  SqliteDb(const std::string& path, const std::string& what);
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;
  void exec(const char* sql) const;
  sqlite3* handle() const { return db_; }
  const std::string& what() const { return what_; }
  int64_t changes() const;

 private:
  sqlite3* db_ = nullptr;
  std::string what_;
};

class SqliteStatement {
 public:
  SqliteStatement(const SqliteDb& db, const char* sql);
  ~SqliteStatement();
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;
  SqliteStatement& bind(int i, const std::string& s);
  SqliteStatement& bind(int i, double v);
  SqliteStatement& bind(int i, int64_t v);
  bool step();  // true: a row is ready
  std::string text(int col) const;
  double real(int col) const;
  int64_t integer(int col) const;

 private:
  const SqliteDb& db_;
  sqlite3_stmt* stmt_ = nullptr;
};

}  // namespace onellm
