// MCP transports. stdio: the server is a child process; we write one JSON
// line per message to its stdin and read lines from its stdout, waiting in
// poll() so a silent or dead server ends in an Error; the child is reaped.
// Streamable HTTP: one POST per message, the reply is JSON or an SSE stream.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

#include "agent/http_client.h"
#include "agent/mcp.h"
#include "agent/text_excerpt.h"
#include "base/error.h"

extern char** environ;

namespace onellm::agent {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxLine = 16 << 20;

std::string exit_text(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("was killed by signal ") + strsignal(WTERMSIG(status));
  return "stopped";
}

class StdioTransport : public McpTransport {
 public:
  explicit StdioTransport(const std::string& command_line) : command_(command_line) {
    std::vector<std::string> words = split_command_line(command_line);
    // A server that exits would otherwise kill us with SIGPIPE on the next write.
    ::signal(SIGPIPE, SIG_IGN);
    int to_child[2], from_child[2];
    if (::pipe2(to_child, O_CLOEXEC) != 0) throw Error(std::string("pipe: ") + std::strerror(errno));
    if (::pipe2(from_child, O_CLOEXEC) != 0) {
      ::close(to_child[0]);
      ::close(to_child[1]);
      throw Error(std::string("pipe: ") + std::strerror(errno));
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, to_child[0], 0);
    posix_spawn_file_actions_adddup2(&actions, from_child[1], 1);
    std::vector<char*> argv;
    for (std::string& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    int rc = ::posix_spawnp(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(to_child[0]);
    ::close(from_child[1]);
    in_ = to_child[1];
    out_ = from_child[0];
    if (rc != 0) {
      pid_ = -1;
      throw Error("cannot start MCP server '" + command_ + "': " + std::strerror(rc));
    }
    ::fcntl(in_, F_SETFL, O_NONBLOCK);
    ::fcntl(out_, F_SETFL, O_NONBLOCK);
  }

  ~StdioTransport() override {
    if (in_ >= 0) ::close(in_);  // end of input: a well-behaved server exits
    if (out_ >= 0) ::close(out_);
    if (pid_ <= 0) return;
    for (int sig : {0, SIGTERM, SIGKILL}) {
      if (sig != 0) ::kill(pid_, sig);
      for (int i = 0; i < 100; ++i) {
        int status;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    ::waitpid(pid_, nullptr, 0);
  }

  RpcMessage request(const Json& message, int timeout_ms, std::vector<RpcMessage>& others,
                     const ServerRequestHandler& answer_server) override {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    const std::string method = message.value("method", "");
    write_line(message.dump(), deadline, method);
    while (true) {
      std::string line = read_line(deadline, method);
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      RpcMessage m;
      try {
        m = parse_rpc_message(line);
      } catch (const Error& e) {
        throw Error("MCP server '" + command_ + "' wrote something that is not JSON-RPC (" + e.what() + ")");
      }
      if (m.kind == RpcMessage::Kind::kResponse && m.id == message["id"]) return m;
      if (m.kind == RpcMessage::Kind::kRequest) write_line(answer_server(m).dump(), deadline, method);
      if (m.kind == RpcMessage::Kind::kNotification) others.push_back(std::move(m));
    }
  }
  void notify(const Json& message, int timeout_ms) override {
    write_line(message.dump(), Clock::now() + std::chrono::milliseconds(timeout_ms), message.value("method", ""));
  }
  std::string describe() const override { return "stdio:" + command_; }

 private:
  // Waits for the fd; throws when the deadline passes.
  void wait(int fd, short events, Clock::time_point deadline, const std::string& method) {
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0)
        throw Error("MCP server '" + command_ + "' did not answer " + method + " in time");
      pollfd p{fd, events, 0};
      int rc = ::poll(&p, 1, static_cast<int>(left));
      if (rc > 0) return;
      if (rc < 0 && errno != EINTR) throw Error(std::string("poll: ") + std::strerror(errno));
    }
  }
  [[noreturn]] void died(const std::string& method) {
    std::string how = "closed its output";
    for (int i = 0; i < 50 && pid_ > 0; ++i) {  // give it a moment to finish exiting
      int status;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        how = exit_text(status);
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    throw Error("MCP server '" + command_ + "' " + how + (method.empty() ? "" : " during " + method));
  }
  void write_line(std::string line, Clock::time_point deadline, const std::string& method) {
    line += '\n';
    for (size_t off = 0; off < line.size();) {
      wait(in_, POLLOUT, deadline, method);
      ssize_t n = ::write(in_, line.data() + off, line.size() - off);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n < 0) died(method);
      off += static_cast<size_t>(n);
    }
  }
  std::string read_line(Clock::time_point deadline, const std::string& method) {
    while (true) {
      size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      if (buf_.size() > kMaxLine)
        throw Error("MCP server '" + command_ + "' wrote a line over 16 MiB: '" + excerpt(buf_) + "'");
      wait(out_, POLLIN, deadline, method);
      char tmp[16384];
      ssize_t n = ::read(out_, tmp, sizeof tmp);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n <= 0) {
        if (!buf_.empty())
          throw Error("MCP server '" + command_ + "' stopped in the middle of a line: '" + excerpt(buf_) + "'");
        died(method);
      }
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }

  std::string command_;
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1;
  std::string buf_;
};

class HttpTransport : public McpTransport {
 public:
  explicit HttpTransport(const std::string& url) : url_(url), endpoint_(parse_endpoint(url)) {}

  RpcMessage request(const Json& message, int timeout_ms, std::vector<RpcMessage>& others,
                     const ServerRequestHandler& answer_server) override {
    std::optional<RpcMessage> found;
    post(message, timeout_ms, &found, others, &answer_server);
    if (!found) throw Error("MCP server " + url_ + " ended its reply to " + message.value("method", "") + " without an answer");
    if (message.value("method", "") == "initialize" && found->result.is_object() &&
        found->result.contains("protocolVersion") && found->result["protocolVersion"].is_string())
      protocol_version_ = found->result["protocolVersion"].get<std::string>();
    return *found;
  }
  void notify(const Json& message, int timeout_ms) override {
    std::vector<RpcMessage> ignored;
    post(message, timeout_ms, nullptr, ignored, nullptr);
  }
  std::string describe() const override { return url_; }

 private:
  void post(const Json& message, int timeout_ms, std::optional<RpcMessage>* found, std::vector<RpcMessage>& others,
            const ServerRequestHandler* answer_server) {
    std::vector<std::pair<std::string, std::string>> headers = {
        {"Content-Type", "application/json"}, {"Accept", "application/json, text/event-stream"}};
    if (!session_id_.empty()) headers.emplace_back("Mcp-Session-Id", session_id_);
    if (!protocol_version_.empty()) headers.emplace_back("MCP-Protocol-Version", protocol_version_);
    const Json& id = message.contains("id") ? message["id"] : Json();
    const std::string method = message.value("method", "");
    SseParser sse;
    std::string body;
    auto take = [&](std::string_view text) {
      RpcMessage m;
      try {
        m = parse_rpc_message(text);
      } catch (const Error& e) {
        throw Error("MCP server " + url_ + " sent something that is not JSON-RPC (" + e.what() + ")");
      }
      if (m.kind == RpcMessage::Kind::kResponse && found != nullptr && m.id == id) {
        *found = std::move(m);
        return false;
      }
      if (m.kind == RpcMessage::Kind::kRequest && answer_server != nullptr) notify((*answer_server)(m), timeout_ms);
      if (m.kind == RpcMessage::Kind::kNotification) others.push_back(std::move(m));
      return true;
    };
    HttpReply reply = http_request(endpoint_, "POST", endpoint_.path, headers, message.dump(), timeout_ms,
                                   [&](const HttpReply& head, std::string_view data) {
                                     if (head.status >= 300 || head.header("content-type").find("text/event-stream") == std::string::npos) {
                                       body.append(data);
                                       return true;
                                     }
                                     for (const SseEvent& e : sse.feed(data))
                                       if ((e.event.empty() || e.event == "message") && !take(e.data)) return false;
                                     return true;
                                   });
    if (std::string sid = reply.header("mcp-session-id"); !sid.empty()) session_id_ = sid;
    if (reply.status == 404 && !session_id_.empty())
      throw Error("MCP server " + url_ + " no longer knows session " + session_id_ + " (HTTP 404)");
    if (reply.status == 202 || reply.status == 204) return;
    const bool is_json = reply.header("content-type").find("application/json") != std::string::npos;
    if (reply.status >= 300 && !(is_json && !body.empty()))
      throw Error("MCP server " + url_ + " answered " + method + " with HTTP " + std::to_string(reply.status) + ": " +
                  excerpt(body));
    if (!body.empty()) {
      if (!is_json) throw Error("MCP server " + url_ + " answered with content type '" + reply.header("content-type") + "'");
      take(body);
    }
  }

  std::string url_;
  HttpEndpoint endpoint_;
  std::string session_id_, protocol_version_;
};

}  // namespace

std::unique_ptr<McpTransport> make_stdio_transport(const std::string& command_line) {
  return std::make_unique<StdioTransport>(command_line);
}
std::unique_ptr<McpTransport> make_http_transport(const std::string& url) {
  return std::make_unique<HttpTransport>(url);
}

}  // namespace onellm::agent
