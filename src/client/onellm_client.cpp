// The client library: HTTP/1.1 over a Unix socket or loopback TCP, JSON
// bodies, SSE streams. No exception crosses the C API.
#include "client/onellm_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <functional>
#include <optional>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

using Json = nlohmann::json;

struct onellm_client {
  std::string unix_path, host, token;
  int port = 0;
  std::string error, error_code;
};

namespace {

struct Failure {
  int status;
  std::string code, message;
};

class Connection {
 public:
  explicit Connection(const onellm_client& c) {
    if (!c.unix_path.empty()) {
      fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_un a{};
      a.sun_family = AF_UNIX;
      if (c.unix_path.size() >= sizeof(a.sun_path)) throw Failure{ONELLM_ERR_ARGUMENT, "CONNECT", "socket path too long"};
      std::memcpy(a.sun_path, c.unix_path.c_str(), c.unix_path.size() + 1);
      if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
        throw Failure{ONELLM_ERR_CONNECT, "CONNECT", "cannot connect to " + c.unix_path + ": " + std::strerror(errno)};
    } else {
      fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(c.port));
      if (::inet_pton(AF_INET, c.host.c_str(), &a.sin_addr) != 1)
        throw Failure{ONELLM_ERR_ARGUMENT, "CONNECT", "bad host " + c.host};
      if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
        throw Failure{ONELLM_ERR_CONNECT, "CONNECT", "cannot connect to " + c.host + ":" + std::to_string(c.port) +
                                                         ": " + std::strerror(errno)};
    }
  }
  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }
  void send_all(const std::string& data) {
    for (size_t off = 0; off < data.size();) {
      ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) throw Failure{ONELLM_ERR_CONNECT, "CONNECT", "the service closed the connection"};
      off += static_cast<size_t>(n);
    }
  }
  // Reads until `delim` is in the buffer; returns everything before it.
  std::string read_until(const std::string& delim) {
    size_t pos;
    while ((pos = buf_.find(delim)) == std::string::npos) fill();
    std::string out = buf_.substr(0, pos);
    buf_.erase(0, pos + delim.size());
    return out;
  }
  std::string read_exact(size_t n) {
    while (buf_.size() < n) fill();
    std::string out = buf_.substr(0, n);
    buf_.erase(0, n);
    return out;
  }
  void close_now() {
    ::shutdown(fd_, SHUT_RDWR);
  }

 private:
  void fill() {
    char tmp[8192];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) throw Failure{ONELLM_ERR_PROTOCOL, "PROTOCOL", "the service closed the connection mid-reply"};
    buf_.append(tmp, static_cast<size_t>(n));
  }
  int fd_ = -1;
  std::string buf_;
};

// Sends a request; for a streamed (chunked) reply, on_data gets each chunk.
// Returns the status and (for non-streamed replies) the body.
std::pair<int, std::string> http(onellm_client& c, const std::string& method, const std::string& path,
                                 const std::string& body, const std::function<bool(const std::string&)>& on_data) {
  Connection conn(c);
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: onellm\r\nConnection: close\r\n";
  if (!c.token.empty()) req += "Authorization: Bearer " + c.token + "\r\n";
  if (!body.empty()) req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  conn.send_all(req + "\r\n" + body);
  std::string status_line = conn.read_until("\r\n");
  int status = 0;
  if (std::sscanf(status_line.c_str(), "HTTP/%*d.%*d %d", &status) != 1)
    throw Failure{ONELLM_ERR_PROTOCOL, "PROTOCOL", "not an HTTP reply: " + status_line.substr(0, 80)};
  bool chunked = false;
  long long length = -1;
  for (std::string h; !(h = conn.read_until("\r\n")).empty();) {
    std::string lower = h;
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (lower.rfind("transfer-encoding:", 0) == 0 && lower.find("chunked") != std::string::npos) chunked = true;
    if (lower.rfind("content-length:", 0) == 0) length = std::atoll(h.c_str() + 15);
  }
  std::string out;
  if (chunked) {
    while (true) {
      size_t n = std::strtoul(conn.read_until("\r\n").c_str(), nullptr, 16);
      if (n == 0) break;
      std::string data = conn.read_exact(n);
      conn.read_until("\r\n");
      if (on_data) {
        if (!on_data(data)) {
          conn.close_now();  // the service sees the disconnect and cancels
          return {status, ""};
        }
      } else {
        out += data;
      }
    }
  } else if (length >= 0) {
    out = conn.read_exact(static_cast<size_t>(length));
  }
  return {status, out};
}

Json checked_json(int status, const std::string& body) {
  Json j = Json::parse(body, nullptr, false);
  if (j.is_discarded()) throw Failure{ONELLM_ERR_PROTOCOL, "PROTOCOL", "the reply is not JSON (HTTP " + std::to_string(status) + ")"};
  if (status >= 400 || j.contains("error")) {
    const Json& e = j.contains("error") ? j["error"] : Json::object();
    throw Failure{ONELLM_ERR_SERVICE, e.value("code", "HTTP_" + std::to_string(status)),
                  e.value("message", "HTTP " + std::to_string(status))};
  }
  return j;
}

template <typename Fn>
int guarded(onellm_client* c, Fn fn) {
  if (c == nullptr) return ONELLM_ERR_ARGUMENT;
  c->error.clear();
  c->error_code.clear();
  try {
    fn();
    return ONELLM_OK;
  } catch (const Failure& f) {
    c->error = f.message;
    c->error_code = f.code;
    return f.status;
  } catch (const std::exception& e) {
    c->error = e.what();
    c->error_code = "PROTOCOL";
    return ONELLM_ERR_PROTOCOL;
  }
}

void add_options(Json& body, const onellm_options* o) {
  if (o == nullptr) return;
  if (o->max_tokens > 0) body["max_tokens"] = o->max_tokens;
  if (o->temperature >= 0) body["temperature"] = o->temperature;
  if (o->seed >= 0) body["seed"] = o->seed;
  if (o->qos != nullptr) body["qos"] = o->qos;
  if (o->ignore_eos != 0) body["ignore_eos"] = true;
  if (o->json_schema != nullptr) {
    Json schema = Json::parse(o->json_schema, nullptr, false);
    if (schema.is_discarded()) throw Failure{ONELLM_ERR_ARGUMENT, "ARGUMENT", "options.json_schema is not valid JSON"};
    body["response_format"] = {{"type", "json_schema"}, {"json_schema", {{"name", "reply"}, {"schema", schema}}}};
  }
}

// The text of an OpenAI message or delta: "content" may be missing or null
// (a role-only first delta, a reply that is only tool calls).
std::string text_of(const Json& message) {
  const auto it = message.find("content");
  return it != message.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Runs a generation request: a JSON reply, or with on_text an SSE stream
// whose events `piece` turns into text. Returns the whole reply text.
std::string generate(onellm_client& c, const std::string& path, Json body, onellm_text_fn on_text, void* user,
                     const std::function<std::string(const Json&)>& piece,
                     const std::function<std::string(const Json&)>& whole) {
  if (on_text == nullptr) {
    auto [status, reply] = http(c, "POST", path, body.dump(), nullptr);
    return whole(checked_json(status, reply));
  }
  body["stream"] = true;
  std::string pending, text;
  std::optional<Failure> failure;
  auto on_data = [&](const std::string& data) {
    pending += data;
    for (size_t end; (end = pending.find("\n\n")) != std::string::npos;) {
      std::string event = pending.substr(0, end);
      pending.erase(0, end + 2);
      if (event.rfind("data: ", 0) != 0) continue;
      std::string payload = event.substr(6);
      if (payload == "[DONE]") continue;
      Json j = Json::parse(payload, nullptr, false);
      if (j.is_discarded()) continue;
      if (j.contains("error")) {
        failure = Failure{ONELLM_ERR_SERVICE, j["error"].value("code", "ERROR"), j["error"].value("message", "")};
        return false;
      }
      std::string t = piece(j);
      if (t.empty()) continue;
      text += t;
      if (on_text(t.data(), t.size(), user) == 0) return false;
    }
    return true;
  };
  auto [status, reply] = http(c, "POST", path, body.dump(), on_data);
  if (failure) throw *failure;
  if (status >= 400) checked_json(status, reply);
  return text;
}

char* dup_string(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p != nullptr) std::memcpy(p, s.c_str(), s.size() + 1);
  return p;
}

}  // namespace

extern "C" {

onellm_client* onellm_client_new(const char* address, const char* token) {
  auto* c = new (std::nothrow) onellm_client();
  if (c == nullptr) return nullptr;
  std::string a = address != nullptr ? address : "";
  if (a.empty()) {
    const char* dir = std::getenv("XDG_RUNTIME_DIR");
    c->unix_path = dir != nullptr ? std::string(dir) + "/onellm.sock" : "/tmp/onellm-" + std::to_string(::getuid()) + ".sock";
  } else if (a.rfind("unix:", 0) == 0) {
    c->unix_path = a.substr(5);
  } else if (a.rfind("http://", 0) == 0) {
    std::string hp = a.substr(7);
    if (!hp.empty() && hp.back() == '/') hp.pop_back();
    size_t colon = hp.rfind(':');
    c->host = hp.substr(0, colon);
    if (c->host == "localhost") c->host = "127.0.0.1";
    c->port = colon == std::string::npos ? 80 : std::atoi(hp.c_str() + colon + 1);
  } else {
    c->unix_path = a;
  }
  if (token != nullptr) c->token = token;
  return c;
}

void onellm_client_free(onellm_client* c) { delete c; }

void onellm_options_init(onellm_options* o) {
  if (o == nullptr) return;
  o->max_tokens = 0;
  o->temperature = -1;
  o->seed = -1;
  o->qos = nullptr;
  o->ignore_eos = 0;
  o->json_schema = nullptr;
  o->adapter = nullptr;
}

const char* onellm_last_error(const onellm_client* c) { return c != nullptr ? c->error.c_str() : "no client"; }
const char* onellm_last_error_code(const onellm_client* c) { return c != nullptr ? c->error_code.c_str() : "ARGUMENT"; }
void onellm_string_free(char* s) { std::free(s); }

}  // extern "C"

extern "C" {

int onellm_session_open(onellm_client* c, const char* name, const char* instructions, const char* qos, char* id_out,
                        size_t id_capacity) {
  return onellm_session_open_with_adapter(c, name, instructions, qos, nullptr, id_out, id_capacity);
}

int onellm_session_open_with_adapter(onellm_client* c, const char* name, const char* instructions, const char* qos,
                                     const char* adapter, char* id_out, size_t id_capacity) {
  return guarded(c, [&] {
    Json body = Json::object();
    if (name != nullptr) body["name"] = name;
    if (instructions != nullptr) body["instructions"] = instructions;
    if (qos != nullptr) body["qos"] = qos;
    if (adapter != nullptr) body["adapter"] = adapter;
    auto [status, reply] = http(*c, "POST", "/v1/sessions", body.dump(), nullptr);
    std::string id = checked_json(status, reply).value("id", "");
    if (id_out == nullptr || id.size() + 1 > id_capacity) throw Failure{ONELLM_ERR_ARGUMENT, "ARGUMENT", "id buffer too small"};
    std::memcpy(id_out, id.c_str(), id.size() + 1);
  });
}

int onellm_session_send(onellm_client* c, const char* session_id, const char* content, const onellm_options* o,
                        onellm_text_fn on_text, void* user, char** reply_out) {
  return guarded(c, [&] {
    if (session_id == nullptr || content == nullptr) throw Failure{ONELLM_ERR_ARGUMENT, "ARGUMENT", "missing session or content"};
    Json body = {{"role", "user"}, {"content", content}};
    add_options(body, o);
    std::string text = generate(
        *c, std::string("/v1/sessions/") + session_id + "/messages", body, on_text, user,
        [](const Json& e) { return e.value("delta", ""); }, [](const Json& j) { return j.value("content", ""); });
    if (reply_out != nullptr) *reply_out = dup_string(text);
  });
}

int onellm_session_delete(onellm_client* c, const char* session_id) {
  return guarded(c, [&] {
    auto [status, reply] = http(*c, "DELETE", std::string("/v1/sessions/") + session_id, "", nullptr);
    checked_json(status, reply);
  });
}

int onellm_chat(onellm_client* c, const char* user_message, const onellm_options* o, onellm_text_fn on_text,
                void* user, char** reply_out) {
  return guarded(c, [&] {
    if (user_message == nullptr) throw Failure{ONELLM_ERR_ARGUMENT, "ARGUMENT", "missing message"};
    Json body = {{"messages", Json::array({{{"role", "user"}, {"content", user_message}}})}};
    add_options(body, o);
    if (o != nullptr && o->adapter != nullptr) body["adapter"] = o->adapter;
    std::string text = generate(
        *c, "/v1/chat/completions", body, on_text, user,
        [](const Json& e) {
          if (!e.contains("choices") || e["choices"].empty()) return std::string();
          return text_of(e["choices"][0].value("delta", Json::object()));
        },
        [](const Json& j) { return text_of(j["choices"][0]["message"]); });
    if (reply_out != nullptr) *reply_out = dup_string(text);
  });
}

}  // extern "C"
