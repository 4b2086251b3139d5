// MCP (Model Context Protocol) client: JSON-RPC 2.0 over a child process's
// stdin/stdout (newline-delimited) or streamable HTTP (POST, JSON or SSE
// replies, Mcp-Session-Id). Initialize handshake, tools/list with cursor
// pagination, tools/call, and re-listing after notifications/tools/list_changed.
// Every wait has a timeout; a server that dies or writes garbage is an Error.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/device.h"

namespace onellm::agent {

constexpr const char* kMcpProtocolVersion = "2025-06-18";

// One JSON-RPC 2.0 message, checked for shape (the fuzzed parser).
struct RpcMessage {
  enum class Kind { kRequest, kNotification, kResponse } kind = Kind::kRequest;
  Json id;             // request / response
  std::string method;  // request / notification
  Json params;         // request / notification (object, array or null)
  Json result;         // successful response
  bool is_error = false;
  long long error_code = 0;
  std::string error_message;
};
// Throws Error naming what is wrong (not JSON, batch, missing jsonrpc, ...).
RpcMessage parse_rpc_message(std::string_view text);
Json rpc_request(const Json& id, const std::string& method, const Json& params);
Json rpc_notification(const std::string& method, const Json& params);
Json rpc_result(const Json& id, const Json& result);
Json rpc_error(const Json& id, int code, const std::string& message);

// How a message gets to the server and back.
class McpTransport {
 public:
  virtual ~McpTransport() = default;
  // Sends `message` and returns the response with its id; notifications
  // arriving meanwhile are appended to `others`; requests from the server
  // (ping) are answered at once with `answer_server`, since the server may
  // wait for that answer before it replies.
  using ServerRequestHandler = std::function<Json(const RpcMessage&)>;
  virtual RpcMessage request(const Json& message, int timeout_ms, std::vector<RpcMessage>& others,
                             const ServerRequestHandler& answer_server) = 0;
  virtual void notify(const Json& message, int timeout_ms) = 0;
  virtual std::string describe() const = 0;
};
// "COMMAND ARGS" split like a shell would (quotes, backslashes; no expansion).
std::vector<std::string> split_command_line(const std::string& command_line);
std::unique_ptr<McpTransport> make_stdio_transport(const std::string& command_line);
std::unique_ptr<McpTransport> make_http_transport(const std::string& url);

struct McpTool {
  std::string name, description;
  Json input_schema;  // JSON Schema of the arguments
  Json annotations;   // destructiveHint, readOnlyHint, ...
  bool destructive() const;
  Json openai_definition() const;  // {"type":"function","function":{...}}
};

struct McpCallResult {
  bool is_error = false;
  Json content;     // MCP content blocks
  Json structured;  // structuredContent, or null
  // What the model reads: the text blocks joined (JSON or not), other blocks
  // described by type.
  std::string text() const;
};

struct McpOptions {
  int timeout_ms = 30000;
  std::string client_name = "onellm";
};

class McpClient {
 public:
  McpClient(std::unique_ptr<McpTransport> transport, McpOptions options = {});
  // Performs the initialize handshake (throws Error if the server refuses).
  void initialize();
  const Json& server_info() const { return server_info_; }
  const std::string& protocol_version() const { return protocol_version_; }
  // Every page of tools/list; cached until the server says the list changed.
  const std::vector<McpTool>& tools();
  McpCallResult call_tool(const std::string& name, const Json& arguments);
  int list_requests() const { return list_requests_; }  // tools/list pages fetched so far
  bool tools_changed() const { return tools_stale_; }   // the server sent list_changed since the last listing
  std::string describe() const { return transport_->describe(); }

 private:
  RpcMessage send(const std::string& method, const Json& params);
  void handle_notifications(std::vector<RpcMessage>& notifications);
  static Json answer_server(const RpcMessage& request);

  std::unique_ptr<McpTransport> transport_;
  McpOptions options_;
  long long next_id_ = 1;
  bool initialized_ = false, tools_stale_ = true;
  Json server_info_;
  std::string protocol_version_;
  std::vector<McpTool> tools_;
  int list_requests_ = 0;
};

// The device's MCP server: handles one message, returns the reply (null for
// notifications). After every tools/call the state is saved to state_path
// (when not empty). page_size > 0 splits tools/list into pages.
class DeviceMcpServer {
 public:
  DeviceMcpServer(Device& device, std::string state_path, int page_size);
  Json handle(const RpcMessage& message);
  Json handle_text(std::string_view line);  // parse errors become JSON-RPC errors
  // Serves newline-delimited JSON-RPC until end of input.
  void serve_stdio(int in_fd, int out_fd);

 private:
  Json call_tool(const Json& params);
  Device& device_;
  std::string state_path_;
  int page_size_;
};

}  // namespace onellm::agent
