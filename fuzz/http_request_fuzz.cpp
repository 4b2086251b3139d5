// Arbitrary bytes through the service's HTTP request parser: head parsing
// and chunked body decoding must end in a result or HttpParseError.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "service/http_server.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  onellm::HttpServerOptions limits;
  limits.max_body_bytes = 1 << 16;
  limits.max_header_bytes = 1 << 14;
  size_t end = in.find("\r\n\r\n");
  try {
    onellm::HttpHead head = onellm::parse_http_head(in.substr(0, end), limits);
    (void)head.request.query_param("a");
    if (end != std::string_view::npos && head.chunked) {
      std::string body;
      (void)onellm::decode_chunked_body(in.substr(end + 4), body, limits.max_body_bytes);
    }
  } catch (const onellm::HttpParseError&) {
  }
  (void)onellm::percent_decode(in);
  return 0;
}
