// JSON-RPC 2.0 messages as MCP uses them (no batches since 2025-06-18), and
// the shell-like split of an MCP server's command line.
#include "agent/text_excerpt.h"
#include "agent/mcp.h"
#include "base/error.h"

namespace onellm::agent {

RpcMessage parse_rpc_message(std::string_view text) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) throw Error("not JSON: '" + excerpt(text) + "'");
  if (j.is_array()) throw Error("JSON-RPC batches are not supported: '" + excerpt(text) + "'");
  if (!j.is_object()) throw Error("a JSON-RPC message must be an object: '" + excerpt(text) + "'");
  if (!j.contains("jsonrpc") || j["jsonrpc"] != "2.0") throw Error("not JSON-RPC 2.0 (\"jsonrpc\":\"2.0\" missing)");
  RpcMessage m;
  if (j.contains("id")) {
    m.id = j["id"];
    if (!m.id.is_string() && !m.id.is_number_integer() && !m.id.is_number_unsigned())
      throw Error("JSON-RPC id must be a string or an integer, not " + excerpt(m.id.dump()));
  }
  if (j.contains("method")) {
    if (!j["method"].is_string()) throw Error("JSON-RPC method must be a string");
    m.method = j["method"].get<std::string>();
    m.kind = j.contains("id") ? RpcMessage::Kind::kRequest : RpcMessage::Kind::kNotification;
    if (j.contains("params")) {
      m.params = j["params"];
      if (!m.params.is_object() && !m.params.is_array())
        throw Error("JSON-RPC params of '" + m.method + "' must be an object or an array");
    }
    return m;
  }
  if (!j.contains("id")) throw Error("JSON-RPC message has neither method nor id");
  m.kind = RpcMessage::Kind::kResponse;
  const bool has_result = j.contains("result"), has_error = j.contains("error");
  if (has_result == has_error) throw Error("JSON-RPC response must have exactly one of result and error");
  if (has_result) {
    m.result = j["result"];
    return m;
  }
  const Json& e = j["error"];
  if (!e.is_object() || !e.contains("code") || !e["code"].is_number_integer() || !e.contains("message") ||
      !e["message"].is_string())
    throw Error("JSON-RPC error must be {\"code\": integer, \"message\": string}");
  m.is_error = true;
  m.error_code = e["code"].get<long long>();
  m.error_message = e["message"].get<std::string>();
  return m;
}

Json rpc_request(const Json& id, const std::string& method, const Json& params) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}};
}
Json rpc_notification(const std::string& method, const Json& params) {
  Json j = {{"jsonrpc", "2.0"}, {"method", method}};
  if (!params.is_null()) j["params"] = params;
  return j;
}
Json rpc_result(const Json& id, const Json& result) { return {{"jsonrpc", "2.0"}, {"id", id}, {"result", result}}; }
Json rpc_error(const Json& id, int code, const std::string& message) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}};
}

std::vector<std::string> split_command_line(const std::string& s) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quote == '\'') {
      if (c == '\'') quote = 0;
      else word += c;
    } else if (quote == '"') {
      if (c == '"') quote = 0;
      else if (c == '\\' && i + 1 < s.size() && (s[i + 1] == '"' || s[i + 1] == '\\')) word += s[++i];
      else word += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < s.size()) {
      word += s[++i];
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(word);
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (quote != 0) throw Error(std::string("unterminated ") + quote + " quote in command '" + s + "'");
  if (in_word) words.push_back(word);
  if (words.empty()) throw Error("empty MCP server command");
  return words;
}

}  // namespace onellm::agent
