// The MCP client session: handshake, tool listing (all pages, re-listed after
// notifications/tools/list_changed), tool calls.
#include "agent/mcp.h"
#include "agent/text_excerpt.h"
#include "base/error.h"

namespace onellm::agent {

bool McpTool::destructive() const {
  // MCP's default for destructiveHint is true, but only when readOnlyHint is
  // false; a server that says nothing is not asked about every call.
  return annotations.is_object() && annotations.value("destructiveHint", false) == true &&
         annotations.value("readOnlyHint", false) == false;
}

Json McpTool::openai_definition() const {
  Json params = input_schema.is_object() ? input_schema : Json{{"type", "object"}, {"properties", Json::object()}};
  return {{"type", "function"}, {"function", {{"name", name}, {"description", description}, {"parameters", params}}}};
}

std::string McpCallResult::text() const {
  std::string out;
  if (content.is_array()) {
    for (const Json& block : content) {
      if (!out.empty()) out += "\n";
      if (block.is_object() && block.value("type", "") == "text" && block.contains("text") && block["text"].is_string())
        out += block["text"].get<std::string>();
      else if (block.is_object())
        out += "[" + block.value("type", std::string("unknown")) + " content]";
    }
  }
  if (out.empty() && !structured.is_null()) out = structured.dump();
  return out;
}

McpClient::McpClient(std::unique_ptr<McpTransport> transport, McpOptions options)
    : transport_(std::move(transport)), options_(std::move(options)) {}

void McpClient::handle_notifications(std::vector<RpcMessage>& notifications) {
  for (RpcMessage& m : notifications)
    if (m.method == "notifications/tools/list_changed") tools_stale_ = true;
  notifications.clear();
}

Json McpClient::answer_server(const RpcMessage& m) {
  // We offer no client capabilities; ping is the one request to answer.
  return m.method == "ping" ? rpc_result(m.id, Json::object())
                            : rpc_error(m.id, -32601, "method not supported by onellm: " + m.method);
}

RpcMessage McpClient::send(const std::string& method, const Json& params) {
  std::vector<RpcMessage> others;
  RpcMessage reply;
  try {
    reply = transport_->request(rpc_request(next_id_++, method, params), options_.timeout_ms, others, answer_server);
  } catch (const Error& e) {
    const std::string what = e.what();
    if (what.find(method) != std::string::npos) throw;
    throw Error(what + " (during " + method + ")");  // the HTTP transport does not know the method
  }
  handle_notifications(others);
  if (reply.is_error)
    throw Error("MCP server " + describe() + " refused " + method + ": " + reply.error_message + " (code " +
                std::to_string(reply.error_code) + ")");
  if (!reply.result.is_object()) throw Error("MCP server " + describe() + " answered " + method + " without a result object");
  return reply;
}

void McpClient::initialize() {
  Json params = {{"protocolVersion", kMcpProtocolVersion},
                 {"capabilities", Json::object()},
                 {"clientInfo", {{"name", options_.client_name}, {"version", "0.1.0"}}}};
  RpcMessage reply = send("initialize", params);
  const Json& r = reply.result;
  if (!r.contains("protocolVersion") || !r["protocolVersion"].is_string())
    throw Error("MCP server " + describe() + " answered initialize without a protocolVersion");
  protocol_version_ = r["protocolVersion"].get<std::string>();
  if (protocol_version_ != "2025-06-18" && protocol_version_ != "2025-03-26" && protocol_version_ != "2024-11-05")
    throw Error("MCP server " + describe() + " speaks protocol version " + protocol_version_ +
                ", onellm speaks 2025-06-18, 2025-03-26 and 2024-11-05");
  server_info_ = r.value("serverInfo", Json::object());
  transport_->notify(rpc_notification("notifications/initialized", nullptr), options_.timeout_ms);
  initialized_ = true;
}

const std::vector<McpTool>& McpClient::tools() {
  if (!initialized_) initialize();
  if (!tools_stale_) return tools_;
  tools_stale_ = false;  // a list_changed arriving while we list sets it again
  std::vector<McpTool> all;
  Json cursor;
  for (int page = 0;; ++page) {
    if (page >= 1000) throw Error("MCP server " + describe() + " sent more than 1000 pages of tools");
    Json params = Json::object();
    if (!cursor.is_null()) params["cursor"] = cursor;
    RpcMessage reply = send("tools/list", params);
    ++list_requests_;
    const Json& r = reply.result;
    if (!r.contains("tools") || !r["tools"].is_array())
      throw Error("MCP server " + describe() + " answered tools/list without a tools array");
    for (const Json& t : r["tools"]) {
      if (!t.is_object() || !t.contains("name") || !t["name"].is_string())
        throw Error("MCP server " + describe() + " listed a tool without a name: " + excerpt(t.dump()));
      McpTool tool;
      tool.name = t["name"].get<std::string>();
      tool.description = t.contains("description") && t["description"].is_string() ? t["description"].get<std::string>() : "";
      tool.input_schema = t.value("inputSchema", Json::object());
      tool.annotations = t.value("annotations", Json::object());
      all.push_back(std::move(tool));
    }
    if (!r.contains("nextCursor") || r["nextCursor"].is_null()) break;
    if (!r["nextCursor"].is_string()) throw Error("MCP server " + describe() + " sent a nextCursor that is not a string");
    if (r["nextCursor"] == cursor) throw Error("MCP server " + describe() + " repeated the cursor " + cursor.dump());
    cursor = r["nextCursor"];
  }
  tools_ = std::move(all);
  return tools_;
}

McpCallResult McpClient::call_tool(const std::string& name, const Json& arguments) {
  if (!initialized_) initialize();
  RpcMessage reply = send("tools/call", {{"name", name}, {"arguments", arguments.is_null() ? Json::object() : arguments}});
  const Json& r = reply.result;
  McpCallResult out;
  out.is_error = r.value("isError", false) == true;
  out.content = r.value("content", Json::array());
  if (!out.content.is_array()) throw Error("MCP server " + describe() + " answered tools/call with content that is not an array");
  out.structured = r.value("structuredContent", Json());
  return out;
}

}  // namespace onellm::agent
