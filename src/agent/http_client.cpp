// HTTP/1.1 client: every read and write waits in poll() against one deadline,
// so a server that stalls or dies gives a clear Error, never a hang.
#include "agent/http_client.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "base/error.h"

namespace onellm::agent {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxHead = 64 << 10;
constexpr size_t kMaxBody = 64 << 20;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class Socket {
 public:
  Socket(const HttpEndpoint& to, int timeout_ms) : to_(to), deadline_(Clock::now() + std::chrono::milliseconds(timeout_ms)) {
    if (!to.unix_path.empty()) {
      sockaddr_un a{};
      a.sun_family = AF_UNIX;
      if (to.unix_path.size() >= sizeof a.sun_path) throw Error("socket path too long: " + to.unix_path);
      std::memcpy(a.sun_path, to.unix_path.c_str(), to.unix_path.size() + 1);
      fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
        throw UnreachableError("cannot connect to " + to.describe() + ": " + std::strerror(errno));
      return;
    }
    addrinfo hints{}, *res = nullptr;
    hints.ai_socktype = SOCK_STREAM;
    int rc = ::getaddrinfo(to.host.c_str(), std::to_string(to.port).c_str(), &hints, &res);
    if (rc != 0) throw UnreachableError("cannot resolve " + to.host + ": " + ::gai_strerror(rc));
    int err = 0;
    for (addrinfo* ai = res; ai != nullptr && fd_ < 0; ai = ai->ai_next) {
      int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
      if (fd >= 0 && ::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) fd_ = fd;
      else {
        err = errno;
        if (fd >= 0) ::close(fd);
      }
    }
    ::freeaddrinfo(res);
    if (fd_ < 0) throw UnreachableError("cannot connect to " + to.describe() + ": " + std::strerror(err));
  }
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  void send_all(const std::string& data) {
    for (size_t off = 0; off < data.size();) {
      wait(POLLOUT);
      ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n <= 0) throw Error(to_.describe() + " closed the connection while the request was sent");
      off += static_cast<size_t>(n);
    }
  }
  // Appends what arrives to buf_; false at end of stream.
  bool fill() {
    char tmp[16384];
    while (true) {
      wait(POLLIN);
      ssize_t n = ::recv(fd_, tmp, sizeof tmp, MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n < 0) throw Error("reading from " + to_.describe() + ": " + std::strerror(errno));
      buf_.append(tmp, static_cast<size_t>(n));
      return n > 0;
    }
  }
  std::string take_until(const std::string& delim, size_t limit, const char* what) {
    size_t pos;
    while ((pos = buf_.find(delim)) == std::string::npos) {
      if (buf_.size() > limit) throw Error(to_.describe() + " sent an oversized " + what);
      if (!fill()) throw Error(to_.describe() + " closed the connection in the middle of the " + what);
    }
    std::string out = buf_.substr(0, pos);
    buf_.erase(0, pos + delim.size());
    return out;
  }
  std::string take(size_t n) {
    while (buf_.size() < n)
      if (!fill()) throw Error(to_.describe() + " closed the connection in the middle of the reply body");
    std::string out = buf_.substr(0, n);
    buf_.erase(0, n);
    return out;
  }
  std::string& buffer() { return buf_; }

 private:
  void wait(short events) {
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
      if (left <= 0) throw Error("timed out waiting for " + to_.describe());
      pollfd p{fd_, events, 0};
      int rc = ::poll(&p, 1, static_cast<int>(left));
      if (rc > 0) return;
      if (rc < 0 && errno != EINTR) throw Error(std::string("poll: ") + std::strerror(errno));
    }
  }
  const HttpEndpoint& to_;
  Clock::time_point deadline_;
  int fd_ = -1;
  std::string buf_;
};

}  // namespace

std::string HttpEndpoint::describe() const {
  return unix_path.empty() ? "http://" + host + ":" + std::to_string(port) : "unix:" + unix_path;
}

HttpEndpoint parse_endpoint(const std::string& url) {
  HttpEndpoint e;
  if (url.rfind("unix:", 0) == 0) {
    e.unix_path = url.substr(5);
    if (e.unix_path.empty()) throw Error("empty socket path in '" + url + "'");
    return e;
  }
  if (url.rfind("http://", 0) != 0) throw Error("not an http:// or unix: address: '" + url + "'");
  std::string rest = url.substr(7);
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) e.path = rest.substr(slash);
  size_t colon = authority.rfind(':');
  e.host = authority.substr(0, colon);
  if (colon != std::string::npos) {
    const std::string port = authority.substr(colon + 1);
    char* end = nullptr;
    long p = std::strtol(port.c_str(), &end, 10);
    if (port.empty() || *end != 0 || p <= 0 || p > 65535) throw Error("bad port in '" + url + "'");
    e.port = static_cast<int>(p);
  }
  if (e.host.empty()) throw Error("no host in '" + url + "'");
  return e;
}

std::string HttpReply::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return "";
}

HttpReply http_request(const HttpEndpoint& to, const std::string& method, const std::string& path,
                       const std::vector<std::pair<std::string, std::string>>& headers, const std::string& body,
                       int timeout_ms, const std::function<bool(const HttpReply& head, std::string_view data)>& on_data) {
  Socket s(to, timeout_ms);
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: " + (to.unix_path.empty() ? to.host : "localhost") +
                    "\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  s.send_all(req + "\r\n" + body);

  HttpReply reply;
  const std::string head = s.take_until("\r\n\r\n", kMaxHead, "reply header");
  size_t line_end = head.find("\r\n");
  const std::string status_line = head.substr(0, line_end);
  if (std::sscanf(status_line.c_str(), "HTTP/1.%*d %d", &reply.status) != 1 || reply.status < 100 || reply.status > 999)
    throw Error(to.describe() + " did not answer in HTTP: '" + status_line.substr(0, 80) + "'");
  for (size_t pos = line_end; pos != std::string::npos && pos < head.size();) {
    size_t next = head.find("\r\n", pos + 2);
    std::string line = head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
    pos = next;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    size_t v = line.find_first_not_of(" \t", colon + 1);
    reply.headers.emplace_back(lower(line.substr(0, colon)), v == std::string::npos ? "" : line.substr(v));
  }

  size_t total = 0;
  auto deliver = [&](std::string data) {
    total += data.size();
    if (total > kMaxBody) throw Error(to.describe() + " sent a reply body over 64 MiB");
    if (!on_data) {
      reply.body += data;
      return true;
    }
    return on_data(reply, data);
  };
  const std::string length = reply.header("content-length");
  if (lower(reply.header("transfer-encoding")).find("chunked") != std::string::npos) {
    while (true) {
      const std::string size_line = s.take_until("\r\n", 1024, "chunk header");
      char* end = nullptr;
      unsigned long n = std::strtoul(size_line.c_str(), &end, 16);
      if (end == size_line.c_str()) throw Error(to.describe() + " sent a bad chunk header '" + size_line.substr(0, 40) + "'");
      if (n > kMaxBody) throw Error(to.describe() + " sent an oversized chunk");
      if (n == 0) break;
      std::string data = s.take(n);
      s.take_until("\r\n", 2, "chunk");
      if (!deliver(std::move(data))) break;
    }
  } else if (!length.empty()) {
    char* end = nullptr;
    unsigned long long n = std::strtoull(length.c_str(), &end, 10);
    if (*end != 0 || n > kMaxBody) throw Error(to.describe() + " sent a bad Content-Length '" + length + "'");
    deliver(s.take(static_cast<size_t>(n)));
  } else {
    // Delimited by close (HTTP/1.0 style streams).
    while (true) {
      if (!s.buffer().empty()) {
        std::string data;
        data.swap(s.buffer());
        if (!deliver(std::move(data))) break;
      }
      if (!s.fill() && s.buffer().empty()) break;
    }
  }
  return reply;
}

std::vector<SseEvent> SseParser::feed(std::string_view bytes) {
  pending_.append(bytes);
  std::vector<SseEvent> out;
  size_t start = 0;
  for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string line = pending_.substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) {  // blank line: dispatch
      if (has_data_) out.push_back(current_);
      current_ = SseEvent{};
      has_data_ = false;
      continue;
    }
    if (line[0] == ':') continue;  // comment / keep-alive
    size_t colon = line.find(':');
    std::string field = line.substr(0, colon);
    std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.erase(0, 1);
    if (field == "data") {
      if (has_data_) current_.data += "\n";
      current_.data += value;
      has_data_ = true;
    } else if (field == "event") {
      current_.event = value;
    } else if (field == "id") {
      current_.id = value;
    }
  }
  pending_.erase(0, start);
  if (pending_.size() > kMaxBody) throw Error("server-sent event line over 64 MiB");
  return out;
}

}  // namespace onellm::agent
