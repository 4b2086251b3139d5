// `onellm device-mcp`: the simulated device as an MCP server. Tool results are
// JSON text blocks plus structuredContent; failed calls are isError results
// (the model reads them), protocol mistakes are JSON-RPC errors.
#include <poll.h>
#include <unistd.h>

#include <cerrno>

#include "agent/mcp.h"
#include "base/error.h"

namespace onellm::agent {

DeviceMcpServer::DeviceMcpServer(Device& device, std::string state_path, int page_size)
    : device_(device), state_path_(std::move(state_path)), page_size_(page_size) {}

Json DeviceMcpServer::call_tool(const Json& params) {
  if (!params.is_object() || !params.contains("name") || !params["name"].is_string())
    throw Error("tools/call needs params.name (a string)");
  Json args = params.value("arguments", Json::object());
  ToolResult r = device_.call(params["name"].get<std::string>(), args);
  if (!state_path_.empty() && !r.is_error) device_.save(state_path_);
  Json out = {{"content", Json::array({{{"type", "text"}, {"text", r.content.dump()}}})}, {"isError", r.is_error}};
  if (!r.is_error) out["structuredContent"] = r.content;
  return out;
}

Json DeviceMcpServer::handle(const RpcMessage& m) {
  if (m.kind == RpcMessage::Kind::kNotification || m.kind == RpcMessage::Kind::kResponse) return nullptr;
  try {
    if (m.method == "initialize") {
      std::string asked = m.params.is_object() ? m.params.value("protocolVersion", "") : "";
      std::string version = asked == "2025-03-26" || asked == "2024-11-05" ? asked : kMcpProtocolVersion;
      return rpc_result(m.id, {{"protocolVersion", version},
                               {"capabilities", {{"tools", {{"listChanged", false}}}}},
                               {"serverInfo", {{"name", "onellm-device"}, {"version", "0.1.0"}}},
                               {"instructions", "A simulated phone: alarms, timers, calendar, contacts, calls, "
                                                "messages, email, search, maps, settings, camera, documents."}});
    }
    if (m.method == "ping") return rpc_result(m.id, Json::object());
    if (m.method == "tools/list") {
      const Json& defs = device_tool_definitions();
      size_t start = 0;
      if (m.params.is_object() && m.params.contains("cursor")) {
        const Json& c = m.params["cursor"];
        if (!c.is_string() || c.get<std::string>().empty() ||
            c.get<std::string>().find_first_not_of("0123456789") != std::string::npos)
          return rpc_error(m.id, -32602, "invalid cursor " + c.dump());
        start = std::stoul(c.get<std::string>());
        if (start >= defs.size()) return rpc_error(m.id, -32602, "invalid cursor " + c.dump());
      }
      size_t end = page_size_ > 0 ? std::min(defs.size(), start + static_cast<size_t>(page_size_)) : defs.size();
      Json tools = Json::array();
      for (size_t i = start; i < end; ++i) {
        const Json& f = defs[i]["function"];
        const std::string name = f["name"].get<std::string>();
        tools.push_back({{"name", name},
                         {"description", f["description"]},
                         {"inputSchema", f["parameters"]},
                         {"annotations", {{"destructiveHint", device_tool_is_destructive(name)},
                                          {"readOnlyHint", device_tool_is_read_only(name)}}}});
      }
      Json result = {{"tools", tools}};
      if (end < defs.size()) result["nextCursor"] = std::to_string(end);
      return rpc_result(m.id, result);
    }
    if (m.method == "tools/call") return rpc_result(m.id, call_tool(m.params));
    return rpc_error(m.id, -32601, "method not found: " + m.method);
  } catch (const Error& e) {
    return rpc_error(m.id, -32602, e.what());
  }
}

Json DeviceMcpServer::handle_text(std::string_view line) {
  RpcMessage m;
  try {
    m = parse_rpc_message(line);
  } catch (const Error& e) {
    return rpc_error(nullptr, -32700, e.what());
  }
  return handle(m);
}

void DeviceMcpServer::serve_stdio(int in_fd, int out_fd) {
  std::string buf;
  auto write_all = [&](const std::string& s) {
    for (size_t off = 0; off < s.size();) {
      ssize_t n = ::write(out_fd, s.data() + off, s.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw Error("device-mcp: cannot write to stdout (client gone)");
      off += static_cast<size_t>(n);
    }
  };
  char tmp[16384];
  while (true) {
    ssize_t n = ::read(in_fd, tmp, sizeof tmp);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    buf.append(tmp, static_cast<size_t>(n));
    for (size_t nl; (nl = buf.find('\n')) != std::string::npos;) {
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      Json reply = handle_text(line);
      if (!reply.is_null()) write_all(reply.dump() + "\n");
    }
    if (buf.size() > (16u << 20)) {
      write_all(rpc_error(nullptr, -32700, "line over 16 MiB").dump() + "\n");
      buf.clear();
    }
  }
}

}  // namespace onellm::agent
