// A small HTTP/1.1 server over POSIX sockets for the service: a Unix socket
// (caller identity from SO_PEERCRED) and loopback TCP, keep-alive, chunked
// bodies, streamed (SSE) responses with disconnect detection, strict limits.
// One thread per connection: handlers may block while tokens are generated.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace onellm {

struct PeerIdentity {
  enum class Transport { kUnix, kTcp } transport = Transport::kTcp;
  int64_t uid = -1, pid = -1, gid = -1;  // from SO_PEERCRED on Unix sockets; -1 on TCP
  std::string address;                   // "unix" or "127.0.0.1:54321"
};

struct HttpRequest {
  std::string method, target, path, query;  // path without the query string, percent-decoded
  int version_minor = 1;                    // HTTP/1.x
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in order
  std::string body;
  PeerIdentity peer;
  const std::string* header(std::string_view name) const;  // first match or nullptr
  std::string query_param(std::string_view name) const;
};

class HttpResponse {
 public:
  HttpResponse(int fd, bool keep_alive, int version_minor) : fd_(fd), keep_alive_(keep_alive), minor_(version_minor) {}
  void set_header(std::string name, std::string value);
  // Whole response (Content-Length). Returns false if the client is gone.
  bool send(int status, std::string_view content_type, std::string_view body);
  // Streaming: chunked on HTTP/1.1, raw until close on HTTP/1.0.
  bool start_stream(int status, std::string_view content_type);
  bool write(std::string_view data);  // one chunk, flushed; false once the client disconnected
  bool end_stream();
  bool client_gone() const;  // non-blocking check of the socket
  bool sent() const { return state_ != State::kFresh; }
  bool keep_alive() const { return keep_alive_ && !broken_; }
  int status() const { return status_; }

 private:
  enum class State { kFresh, kStreaming, kDone };
  bool write_all(std::string_view data);
  std::string head(int status, std::string_view content_type, const std::string& framing);
  int fd_;
  bool keep_alive_;
  int minor_;
  int status_ = 0;
  bool broken_ = false;
  State state_ = State::kFresh;
  std::vector<std::pair<std::string, std::string>> extra_headers_;
};

struct HttpServerOptions {
  size_t max_header_bytes = 64 << 10;
  size_t max_body_bytes = 16 << 20;
  int max_connections = 256;
  int idle_timeout_ms = 30000;  // keep-alive connections idle this long are closed
  int read_timeout_ms = 10000;  // a request that trickles in slower is answered 408
};

// Parsing, separate from sockets (fuzzed): the head of a request.
struct HttpHead {
  HttpRequest request;
  bool chunked = false;
  size_t content_length = 0;
  bool expect_continue = false;
  bool keep_alive = true;
};
struct HttpParseError {
  int status;
  std::string message;
};
// Parses request line and headers (text before the blank line, without it).
// Throws HttpParseError (400, 413, 431, 501...).
HttpHead parse_http_head(std::string_view head, const HttpServerOptions& limits);
// Decodes a chunked body from `data`; returns the bytes consumed, or 0 if more
// input is needed. Throws HttpParseError on malformed framing or size limits.
size_t decode_chunked_body(std::string_view data, std::string& body, size_t max_body_bytes);
std::string percent_decode(std::string_view s);

class HttpServer {
 public:
  using Handler = std::function<void(const HttpRequest&, HttpResponse&)>;
  explicit HttpServer(Handler handler, HttpServerOptions options = {});
  ~HttpServer();
  void listen_unix(const std::string& path, int mode = 0666);  // throws Error if the path is in use
  int listen_tcp(const std::string& host, int port);          // port 0: ephemeral; returns the bound port
  void start();
  // Stops accepting, lets in-flight requests finish (up to the timeout), then
  // closes every connection.
  void stop(int drain_timeout_ms = 30000);
  size_t active_requests() const { return active_requests_.load(); }

 private:
  struct Connection;
  void accept_loop(int listen_fd, bool is_unix);
  void serve_connection(std::shared_ptr<Connection> conn);

  Handler handler_;
  HttpServerOptions options_;
  std::vector<std::pair<int, bool>> listeners_;  // fd, is_unix
  std::vector<std::thread> accept_threads_;
  int wake_pipe_[2] = {-1, -1};
  std::mutex mu_;
  std::vector<std::shared_ptr<Connection>> connections_;
  std::atomic<size_t> active_requests_{0};
  std::atomic<bool> stopping_{false};
  bool started_ = false, stopped_ = false;
};

}  // namespace onellm
