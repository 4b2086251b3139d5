// KvChunkStore: chunk files, one directory per app, written atomically
// (tmp + fsync + rename + fsync of the directory), and their metadata in
// SQLite (WAL). The row is inserted after the rename, so a row always means a
// complete file; a file without a row (crash in between) is removed at start.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/error.h"
#include "context/context.h"

namespace onellm {
namespace {

namespace fs = std::filesystem;

std::string hex_name(const std::string& s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out.empty() ? "_" : out;
}

void write_all(int fd, const std::string& data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(path + ": write failed: " + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
}

// One prepared statement, finalized on scope exit.
struct Query {
  sqlite3* db;
  sqlite3_stmt* stmt = nullptr;
  Query(sqlite3* d, const char* sql) : db(d) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK)
      throw Error(std::string("KV chunk metadata: ") + sqlite3_errmsg(db));
  }
  ~Query() { sqlite3_finalize(stmt); }
  Query& text(int i, const std::string& s) {
    sqlite3_bind_text(stmt, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Query& integer(int i, int64_t v) {
    sqlite3_bind_int64(stmt, i, v);
    return *this;
  }
  bool row() {
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw Error(std::string("KV chunk metadata: ") + sqlite3_errmsg(db));
  }
  std::string column_text(int c) const {
    const unsigned char* p = sqlite3_column_text(stmt, c);
    return p ? reinterpret_cast<const char*>(p) : "";
  }
};

}  // namespace

KvChunkStore::KvChunkStore(const std::string& dir, uint64_t model_hash) : dir_(dir), model_hash_(model_hash) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw Error(dir_ + ": cannot create the KV chunk directory: " + ec.message());
  ::chmod(dir_.c_str(), 0700);
  const std::string db_path = dir_ + "/chunks.db";
  if (sqlite3_open_v2(db_path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error(db_path + ": cannot open the KV chunk database: " + msg);
  }
  sqlite3_busy_timeout(db_, 5000);
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=NORMAL");
  exec("CREATE TABLE IF NOT EXISTS kv_chunks(app TEXT NOT NULL, hash TEXT NOT NULL, model_hash TEXT NOT NULL,"
       " n_tokens INTEGER NOT NULL, format INTEGER NOT NULL, bytes INTEGER NOT NULL, created REAL,"
       " PRIMARY KEY(app, hash))");
}

KvChunkStore::~KvChunkStore() { sqlite3_close(db_); }

void KvChunkStore::exec(const char* sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw Error(dir_ + "/chunks.db: " + msg);
  }
}

std::string KvChunkStore::path_of(const std::string& app, uint64_t chain_hash) const {
  return dir_ + "/" + hex_name(app) + "/" + hex64(chain_hash) + ".kvc";
}

void KvChunkStore::write(const std::string& app, uint64_t chain_hash, int64_t n_tokens, KvFormat format,
                         const std::string& image) {
  static std::atomic<uint64_t> counter{0};
  const std::string app_dir = dir_ + "/" + hex_name(app);
  if (::mkdir(app_dir.c_str(), 0700) != 0 && errno != EEXIST)
    throw Error(app_dir + ": cannot create the app's chunk directory: " + std::strerror(errno));
  const std::string path = path_of(app, chain_hash);
  const std::string tmp = path + ".tmp" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw Error(tmp + ": cannot create: " + std::strerror(errno));
  try {
    write_all(fd, image, tmp);
    if (::fsync(fd) != 0) throw Error(tmp + ": fsync failed: " + std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw Error(path + ": rename failed: " + std::strerror(e));
  }
  int dfd = ::open(app_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);  // makes the rename durable
    ::close(dfd);
  }
  std::lock_guard<std::mutex> lock(mu_);
  Query q(db_, "INSERT OR REPLACE INTO kv_chunks(app, hash, model_hash, n_tokens, format, bytes, created)"
               " VALUES(?, ?, ?, ?, ?, ?, strftime('%s','now'))");
  q.text(1, app).text(2, hex64(chain_hash)).text(3, hex64(model_hash_)).integer(4, n_tokens);
  q.integer(5, static_cast<int64_t>(format)).integer(6, static_cast<int64_t>(image.size())).row();
}

bool KvChunkStore::contains(const std::string& app, uint64_t chain_hash) const {
  std::lock_guard<std::mutex> lock(mu_);
  Query q(db_, "SELECT 1 FROM kv_chunks WHERE app = ? AND hash = ? AND model_hash = ?");
  q.text(1, app).text(2, hex64(chain_hash)).text(3, hex64(model_hash_));
  return q.row();
}

std::string KvChunkStore::read(const std::string& app, uint64_t chain_hash, bool cold) const {
  const std::string path = path_of(app, chain_hash);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat st{};
  if (::fstat(fd, &st) != 0 || st.st_size > (int64_t{1} << 32)) {
    ::close(fd);
    throw Error(path + ": cannot stat or too large");
  }
  if (cold) ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::read(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      throw Error(path + ": read failed" + (n < 0 ? std::string(": ") + std::strerror(errno) : " (short file)"));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return data;
}

void KvChunkStore::remove(const std::string& app, uint64_t chain_hash) {
  ::unlink(path_of(app, chain_hash).c_str());
  std::lock_guard<std::mutex> lock(mu_);
  Query q(db_, "DELETE FROM kv_chunks WHERE app = ? AND hash = ?");
  q.text(1, app).text(2, hex64(chain_hash)).row();
}

int64_t KvChunkStore::discard_stale() {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t dropped = 0;
  {
    Query q(db_, "SELECT app, hash FROM kv_chunks WHERE model_hash != ?");
    q.text(1, hex64(model_hash_));
    while (q.row()) {
      ::unlink((dir_ + "/" + hex_name(q.column_text(0)) + "/" + q.column_text(1) + ".kvc").c_str());
      ++dropped;
    }
  }
  Query del(db_, "DELETE FROM kv_chunks WHERE model_hash != ?");
  del.text(1, hex64(model_hash_)).row();
  // Files without a row: interrupted writes (tmp) or a crash before the insert.
  std::error_code ec;
  for (const auto& app_dir : fs::directory_iterator(dir_, ec)) {
    if (!app_dir.is_directory()) continue;
    for (const auto& f : fs::directory_iterator(app_dir.path(), ec)) {
      const std::string name = f.path().filename().string();
      bool keep = false;
      if (name.size() == 20 && name.ends_with(".kvc")) {
        Query q(db_, "SELECT app FROM kv_chunks WHERE hash = ? AND model_hash = ?");
        q.text(1, name.substr(0, 16)).text(2, hex64(model_hash_));
        while (q.row()) keep = keep || hex_name(q.column_text(0)) == app_dir.path().filename().string();
      }
      if (!keep) {
        fs::remove(f.path(), ec);
        ++dropped;
      }
    }
  }
  return dropped;
}

int64_t KvChunkStore::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  Query q(db_, "SELECT COUNT(*) FROM kv_chunks");
  return q.row() ? sqlite3_column_int64(q.stmt, 0) : 0;
}

uint64_t KvChunkStore::bytes_on_disk() const {
  std::lock_guard<std::mutex> lock(mu_);
  Query q(db_, "SELECT COALESCE(SUM(bytes), 0) FROM kv_chunks");
  return q.row() ? static_cast<uint64_t>(sqlite3_column_int64(q.stmt, 0)) : 0;
}

}  // namespace onellm
