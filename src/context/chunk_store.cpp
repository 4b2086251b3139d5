// KvChunkStore: chunk files, one directory per app, written atomically
// (tmp + fsync + rename + fsync of the directory), and their metadata in
// SQLite (WAL). The row is inserted after the rename, so a row always means a
// complete file; a file without a row (crash in between) is removed at start.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/error.h"
#include "base/sqlite_db.h"
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

void write_all(int fd, const void* data, size_t size, const std::string& path) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::write(fd, static_cast<const char*>(data) + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(path + ": write failed: " + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
}

}  // namespace

KvChunkStore::KvChunkStore(const std::string& dir, uint64_t model_hash) : dir_(dir), model_hash_(model_hash) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw Error(dir_ + ": cannot create the KV chunk directory: " + ec.message());
  ::chmod(dir_.c_str(), 0700);
  db_ = std::make_unique<SqliteDb>(dir_ + "/chunks.db", "KV chunk database");
  db_->exec("CREATE TABLE IF NOT EXISTS kv_chunks(app TEXT NOT NULL, hash TEXT NOT NULL, model_hash TEXT NOT NULL,"
       " n_tokens INTEGER NOT NULL, format INTEGER NOT NULL, bytes INTEGER NOT NULL, created REAL,"
       " PRIMARY KEY(app, hash))");
}

KvChunkStore::~KvChunkStore() = default;

std::string KvChunkStore::path_of(const std::string& app, uint64_t chain_hash) const {
  return dir_ + "/" + hex_name(app) + "/" + hex64(chain_hash) + ".kvc";
}

void KvChunkStore::write(const std::string& app, uint64_t chain_hash, int64_t n_tokens, KvFormat format,
                         const std::string& image) {
  write(app, chain_hash, n_tokens, format, [&](const ChunkSink& sink) {
    sink(image.data(), image.size());
    return static_cast<uint64_t>(image.size());
  });
}

uint64_t KvChunkStore::write(const std::string& app, uint64_t chain_hash, int64_t n_tokens, KvFormat format,
                             const std::function<uint64_t(const ChunkSink&)>& produce) {
  static std::atomic<uint64_t> counter{0};
  const std::string app_dir = dir_ + "/" + hex_name(app);
  if (::mkdir(app_dir.c_str(), 0700) != 0 && errno != EEXIST)
    throw Error(app_dir + ": cannot create the app's chunk directory: " + std::strerror(errno));
  const std::string path = path_of(app, chain_hash);
  const std::string tmp = path + ".tmp" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw Error(tmp + ": cannot create: " + std::strerror(errno));
  uint64_t size = 0;
  try {
    size = produce([&](const void* data, size_t n) { write_all(fd, data, n, tmp); });
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
  SqliteStatement q(*db_, "INSERT OR REPLACE INTO kv_chunks(app, hash, model_hash, n_tokens, format, bytes, created)"
               " VALUES(?, ?, ?, ?, ?, ?, strftime('%s','now'))");
  q.bind(1, app).bind(2, hex64(chain_hash)).bind(3, hex64(model_hash_)).bind(4, n_tokens);
  q.bind(5, static_cast<int64_t>(format)).bind(6, static_cast<int64_t>(size)).step();
  return size;
}

bool KvChunkStore::contains(const std::string& app, uint64_t chain_hash) const {
  std::lock_guard<std::mutex> lock(mu_);
  SqliteStatement q(*db_, "SELECT 1 FROM kv_chunks WHERE app = ? AND hash = ? AND model_hash = ?");
  q.bind(1, app).bind(2, hex64(chain_hash)).bind(3, hex64(model_hash_));
  return q.step();
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

void KvChunkStore::prefetch(const std::string& app, uint64_t chain_hash, bool cold) const {
  const int fd = ::open(path_of(app, chain_hash).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;  // read() reports it
  if (cold) ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
  ::close(fd);
}

void KvChunkStore::remove(const std::string& app, uint64_t chain_hash) {
  ::unlink(path_of(app, chain_hash).c_str());
  std::lock_guard<std::mutex> lock(mu_);
  SqliteStatement q(*db_, "DELETE FROM kv_chunks WHERE app = ? AND hash = ?");
  q.bind(1, app).bind(2, hex64(chain_hash)).step();
}

int64_t KvChunkStore::discard_stale() {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t dropped = 0;
  {
    SqliteStatement q(*db_, "SELECT app, hash FROM kv_chunks WHERE model_hash != ?");
    q.bind(1, hex64(model_hash_));
    while (q.step()) {
      ::unlink((dir_ + "/" + hex_name(q.text(0)) + "/" + q.text(1) + ".kvc").c_str());
      ++dropped;
    }
  }
  SqliteStatement del(*db_, "DELETE FROM kv_chunks WHERE model_hash != ?");
  del.bind(1, hex64(model_hash_)).step();
  // Files without a row: interrupted writes (tmp) or a crash before the insert.
  std::error_code ec;
  for (const auto& app_dir : fs::directory_iterator(dir_, ec)) {
    if (!app_dir.is_directory()) continue;
    for (const auto& f : fs::directory_iterator(app_dir.path(), ec)) {
      const std::string name = f.path().filename().string();
      bool keep = false;
      if (name.size() == 20 && name.ends_with(".kvc")) {
        SqliteStatement q(*db_, "SELECT app FROM kv_chunks WHERE hash = ? AND model_hash = ?");
        q.bind(1, name.substr(0, 16)).bind(2, hex64(model_hash_));
        while (q.step()) keep = keep || hex_name(q.text(0)) == app_dir.path().filename().string();
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
  SqliteStatement q(*db_, "SELECT COUNT(*) FROM kv_chunks");
  return q.step() ? q.integer(0) : 0;
}

uint64_t KvChunkStore::bytes_on_disk() const {
  std::lock_guard<std::mutex> lock(mu_);
  SqliteStatement q(*db_, "SELECT COALESCE(SUM(bytes), 0) FROM kv_chunks");
  return q.step() ? static_cast<uint64_t>(q.integer(0)) : 0;
}

}  // namespace onellm
