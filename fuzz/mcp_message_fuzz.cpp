// Arbitrary bytes through the agent layer's parsers: JSON-RPC/MCP messages
// (as the device server handles them, tool arguments included), SSE framing
// split at any point, command lines, and state predicates. Each must end in
// a result or onellm::Error.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "agent/agent.h"
#include "base/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace onellm::agent;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  try {
    (void)parse_rpc_message(in);
  } catch (const onellm::Error&) {
  }
  static Device device;
  static DeviceMcpServer server(device, "", 7);
  (void)server.handle_text(in);

  SseParser sse;
  size_t cut = size == 0 ? 0 : data[0] % (size + 1);
  (void)sse.feed(in.substr(0, cut));
  (void)sse.feed(in.substr(cut));
  try {
    (void)split_command_line(std::string(in));
  } catch (const onellm::Error&) {
  }
  Json predicate = Json::parse(in.begin(), in.end(), nullptr, false);
  if (!predicate.is_discarded()) {
    try {
      (void)check_predicate(predicate, device.state());
    } catch (const onellm::Error&) {
    }
  }
  return 0;
}
