// Sockets, connections and responses of HttpServer.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "base/error.h"
#include "service/http_server.h"

namespace onellm {
namespace {

const char* reason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Status";
  }
}

std::string error_body(int status, const std::string& message) {
  std::string escaped;
  for (char c : message) {
    if (c == '"' || c == '\\') escaped += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) escaped += c;
  }
  const char* code = status == 413 || status == 431 || status == 400 || status == 408 ? "BAD_REQUEST"
                     : status == 503                                                  ? "BUSY"
                                                                                      : "SERVER_ERROR";
  return std::string("{\"error\":{\"message\":\"") + escaped + "\",\"type\":\"" +
         (status >= 500 ? "server_error" : "invalid_request_error") + "\",\"code\":\"" + code + "\",\"param\":null}}";
}

// Waits until fd is readable; false on timeout or stop.
bool wait_readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  int rc;
  do rc = ::poll(&p, 1, timeout_ms);
  while (rc < 0 && errno == EINTR);
  return rc > 0;
}

}  // namespace

struct HttpServer::Connection {
  int fd = -1;
  PeerIdentity peer;
  std::thread thread;
  std::atomic<bool> done{false};
};

// ---- HttpResponse

void HttpResponse::set_header(std::string name, std::string value) {
  extra_headers_.emplace_back(std::move(name), std::move(value));
}

bool HttpResponse::write_all(std::string_view data) {
  if (broken_) return false;
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      broken_ = true;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string HttpResponse::head(int status, std::string_view content_type, const std::string& framing) {
  status_ = status;
  std::string h = "HTTP/1." + std::to_string(minor_) + " " + std::to_string(status) + " " + reason(status) + "\r\n";
  h += "Content-Type: " + std::string(content_type) + "\r\n" + framing;
  for (const auto& [k, v] : extra_headers_) h += k + ": " + v + "\r\n";
  h += keep_alive_ ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  return h + "\r\n";
}

bool HttpResponse::send(int status, std::string_view content_type, std::string_view body) {
  if (state_ != State::kFresh) return false;
  state_ = State::kDone;
  std::string out = head(status, content_type, "Content-Length: " + std::to_string(body.size()) + "\r\n");
  out.append(body);
  return write_all(out);
}

bool HttpResponse::start_stream(int status, std::string_view content_type) {
  if (state_ != State::kFresh) return false;
  state_ = State::kStreaming;
  if (minor_ == 0) keep_alive_ = false;  // HTTP/1.0: the stream ends when the connection closes
  std::string framing = minor_ == 1 ? "Transfer-Encoding: chunked\r\n" : "";
  framing += "Cache-Control: no-cache\r\n";
  return write_all(head(status, content_type, framing));
}

bool HttpResponse::write(std::string_view data) {
  if (state_ != State::kStreaming) return false;
  if (data.empty()) return !broken_;
  if (minor_ == 0) return write_all(data);
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  std::string chunk = size;
  chunk.append(data);
  chunk += "\r\n";
  return write_all(chunk);
}

bool HttpResponse::end_stream() {
  if (state_ != State::kStreaming) return false;
  state_ = State::kDone;
  return minor_ == 0 ? !broken_ : write_all("0\r\n\r\n");
}

bool HttpResponse::client_gone() const {
  if (broken_) return true;
  pollfd p{fd_, POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) return true;
  char c;
  ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0;
}

// ---- HttpServer

HttpServer::HttpServer(Handler handler, HttpServerOptions options)
    : handler_(std::move(handler)), options_(options) {
  if (::pipe2(wake_pipe_, O_CLOEXEC) != 0) throw Error(std::string("cannot create a pipe: ") + std::strerror(errno));
}

HttpServer::~HttpServer() {
  stop(0);
  for (auto& [fd, is_unix] : listeners_) ::close(fd);
  ::close(wake_pipe_[0]);
  ::close(wake_pipe_[1]);
}

void HttpServer::listen_unix(const std::string& path, int mode) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) throw Error(path + ": socket path is too long");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  // A socket file nobody answers on is stale (a crashed daemon); one that
  // answers belongs to a running daemon.
  int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe >= 0) {
    bool alive = ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(probe);
    if (alive) throw Error(path + ": another server is already listening there");
  }
  ::unlink(path.c_str());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 128) != 0) {
    int e = errno;
    if (fd >= 0) ::close(fd);
    throw Error(path + ": cannot listen: " + std::strerror(e));
  }
  ::chmod(path.c_str(), static_cast<mode_t>(mode));
  listeners_.emplace_back(fd, true);
}

int HttpServer::listen_tcp(const std::string& host, int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) throw Error("'" + host + "' is not an IPv4 address");
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd >= 0) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 128) != 0) {
    int e = errno;
    if (fd >= 0) ::close(fd);
    throw Error(host + ":" + std::to_string(port) + ": cannot listen: " + std::strerror(e));
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  listeners_.emplace_back(fd, false);
  return ntohs(addr.sin_port);
}

void HttpServer::start() {
  if (started_) return;
  started_ = true;
  for (auto [fd, is_unix] : listeners_) accept_threads_.emplace_back([this, fd = fd, u = is_unix] { accept_loop(fd, u); });
}

void HttpServer::accept_loop(int listen_fd, bool is_unix) {
  while (!stopping_) {
    pollfd p[2] = {{listen_fd, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
    if (::poll(p, 2, -1) <= 0) continue;
    if (stopping_ || (p[1].revents & POLLIN)) break;
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    auto conn = std::make_shared<Connection>();
    conn->fd = fd;
    if (is_unix) {
      conn->peer.transport = PeerIdentity::Transport::kUnix;
      conn->peer.address = "unix";
      ucred cred{};
      socklen_t len = sizeof cred;
      if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
        conn->peer.uid = cred.uid;
        conn->peer.pid = cred.pid;
        conn->peer.gid = cred.gid;
      }
    } else {
      sockaddr_in a{};
      socklen_t len = sizeof a;
      ::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len);
      char ip[INET_ADDRSTRLEN] = "?";
      ::inet_ntop(AF_INET, &a.sin_addr, ip, sizeof ip);
      conn->peer.address = std::string(ip) + ":" + std::to_string(ntohs(a.sin_port));
    }
    std::lock_guard<std::mutex> lock(mu_);
    // Reap finished connections.
    for (auto it = connections_.begin(); it != connections_.end();) {
      if ((*it)->done) {
        (*it)->thread.join();
        it = connections_.erase(it);
      } else {
        ++it;
      }
    }
    if (static_cast<int>(connections_.size()) >= options_.max_connections) {
      std::string body = error_body(503, "too many connections");
      std::string out = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" + body;
      ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
      ::close(fd);
      continue;
    }
    connections_.push_back(conn);
    conn->thread = std::thread([this, conn] { serve_connection(conn); });
  }
}

void HttpServer::serve_connection(std::shared_ptr<Connection> conn) {
  const int fd = conn->fd;
  std::string buf;
  auto reply_error = [&](int status, const std::string& message) {
    HttpResponse rs(fd, false, 1);
    rs.send(status, "application/json", error_body(status, message));
  };
  // Reads more bytes into buf; false on timeout, EOF or stop.
  auto read_more = [&](int timeout_ms) {
    if (!wait_readable(fd, timeout_ms)) return false;
    char tmp[65536];
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<size_t>(n));
    return true;
  };
  bool keep_alive = true;
  while (keep_alive && !stopping_) {
    // Head: idle timeout for the first byte, read timeout for the rest.
    size_t head_end;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.read_timeout_ms);
    bool timed_out = false, closed = false;
    while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
      if (buf.size() > options_.max_header_bytes) break;
      const bool idle = buf.empty();
      if (idle) deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.read_timeout_ms);
      int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count());
      if (!read_more(idle ? options_.idle_timeout_ms : std::max(left, 0))) {
        if (idle) closed = true;
        else timed_out = true;
        break;
      }
    }
    if (closed) break;
    if (timed_out) {
      reply_error(408, "the request was not received in time");
      break;
    }
    if (head_end == std::string::npos) {
      reply_error(431, "request headers are too large");
      break;
    }
    HttpHead head;
    try {
      head = parse_http_head(std::string_view(buf).substr(0, head_end), options_);
    } catch (const HttpParseError& e) {
      reply_error(e.status, e.message);
      break;
    }
    buf.erase(0, head_end + 4);
    if (head.expect_continue) ::send(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25, MSG_NOSIGNAL);
    // Body.
    bool body_ok = true;
    try {
      if (head.chunked) {
        size_t tried_at = 0;
        while (true) {
          if (buf.size() >= 2 * tried_at || buf.ends_with("\r\n\r\n")) {
            tried_at = buf.size();
            size_t used = decode_chunked_body(buf, head.request.body, options_.max_body_bytes);
            if (used > 0) {
              buf.erase(0, used);
              break;
            }
          }
          if (buf.size() > options_.max_body_bytes + 1024 * 1024) throw HttpParseError{413, "the request body is too large"};
          if (!read_more(options_.read_timeout_ms)) throw HttpParseError{408, "the request body was not received in time"};
        }
      } else {
        while (buf.size() < head.content_length)
          if (!read_more(options_.read_timeout_ms)) throw HttpParseError{408, "the request body was not received in time"};
        head.request.body = buf.substr(0, head.content_length);
        buf.erase(0, head.content_length);
      }
    } catch (const HttpParseError& e) {
      reply_error(e.status, e.message);
      body_ok = false;
    }
    if (!body_ok) break;

    head.request.peer = conn->peer;
    HttpResponse rs(fd, head.keep_alive && !stopping_, head.request.version_minor);
    active_requests_++;
    try {
      handler_(head.request, rs);
      if (!rs.sent()) rs.send(500, "application/json", error_body(500, "the handler sent no response"));
    } catch (const std::exception& e) {
      if (!rs.sent()) rs.send(500, "application/json", error_body(500, e.what()));
    }
    active_requests_--;
    keep_alive = rs.keep_alive();
  }
  // Under mu_ so that stop() never shuts down an fd number already reused.
  std::lock_guard<std::mutex> lock(mu_);
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
  conn->done = true;
}

void HttpServer::stop(int drain_timeout_ms) {
  if (stopped_) return;
  stopped_ = true;
  stopping_ = true;
  (void)!::write(wake_pipe_[1], "x", 1);
  for (auto& t : accept_threads_) t.join();
  accept_threads_.clear();
  for (auto& [fd, is_unix] : listeners_) ::close(fd);
  listeners_.clear();
  // Let in-flight requests finish; idle keep-alive connections are closed.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(drain_timeout_ms);
  while (active_requests_ > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::vector<std::shared_ptr<Connection>> conns;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& c : connections_)
      if (!c->done) ::shutdown(c->fd, SHUT_RDWR);
    conns.swap(connections_);
  }
  for (auto& c : conns) c->thread.join();
}

}  // namespace onellm
