// A small blocking HTTP/1.1 client over POSIX sockets (loopback TCP or a Unix
// socket) with an overall timeout, for MCP's streamable-HTTP transport and the
// agent's calls to the onellm service. One connection per request.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"

namespace onellm::agent {

struct HttpEndpoint {
  std::string unix_path;  // non-empty: connect to this Unix socket
  std::string host = "127.0.0.1";
  int port = 80;
  std::string path = "/";  // from the URL; requests may use their own
  std::string describe() const;
};

// Nothing answers at the endpoint (no such socket, connection refused,
// unknown host): the service is down, not a request that failed. Callers
// that retry or report per request tell the two apart by this type.
class UnreachableError : public Error {
 public:
  using Error::Error;
};

// "http://host:port/path" or "unix:/path/to.sock". Throws Error otherwise.
HttpEndpoint parse_endpoint(const std::string& url);

struct HttpReply {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;                                           // empty when streamed to on_data
  std::string header(std::string_view name) const;
};

// Sends one request and reads the reply. With on_data, body bytes are handed
// over as they arrive (SSE) until it returns false or the body ends. Throws
// UnreachableError when it cannot connect, Error on malformed replies or
// after timeout_ms.
HttpReply http_request(const HttpEndpoint& to, const std::string& method, const std::string& path,
                       const std::vector<std::pair<std::string, std::string>>& headers, const std::string& body,
                       int timeout_ms, const std::function<bool(const HttpReply& head, std::string_view data)>& on_data = {});

// Server-sent events, fed in arbitrary pieces.
struct SseEvent {
  std::string event, data, id;
};
class SseParser {
 public:
  std::vector<SseEvent> feed(std::string_view bytes);

 private:
  std::string pending_;
  SseEvent current_;
  bool has_data_ = false;
};

}  // namespace onellm::agent
