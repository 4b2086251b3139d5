// HTTP/1.1 request parsing on plain buffers (no sockets), so it can be fuzzed.
#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "service/http_server.h"

namespace onellm {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool is_token_char(unsigned char c) {
  return std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

HttpHead parse_http_head(std::string_view text, const HttpServerOptions& limits) {
  if (text.size() > limits.max_header_bytes) throw HttpParseError{431, "request headers are too large"};
  HttpHead h;
  size_t eol = text.find('\n');
  std::string_view line = trim(text.substr(0, eol));
  // METHOD SP target SP HTTP/1.x
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos || sp1 == 0)
    throw HttpParseError{400, "malformed request line"};
  std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                   version = line.substr(sp2 + 1);
  for (char c : method)
    if (!is_token_char(static_cast<unsigned char>(c))) throw HttpParseError{400, "malformed method"};
  if (version == "HTTP/1.1") h.request.version_minor = 1;
  else if (version == "HTTP/1.0") h.request.version_minor = 0;
  else throw HttpParseError{505, "only HTTP/1.0 and HTTP/1.1 are supported"};
  if (target.empty() || target.front() != '/') throw HttpParseError{400, "the request target must be an absolute path"};
  for (char c : target)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) throw HttpParseError{400, "malformed request target"};
  h.request.method = std::string(method);
  h.request.target = std::string(target);
  size_t q = target.find('?');
  h.request.path = percent_decode(target.substr(0, q));
  if (q != std::string_view::npos) h.request.query = std::string(target.substr(q + 1));

  std::string_view rest = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
  bool has_length = false;
  while (!rest.empty()) {
    size_t e = rest.find('\n');
    std::string_view l = rest.substr(0, e);
    rest = e == std::string_view::npos ? std::string_view() : rest.substr(e + 1);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (l.empty()) continue;
    if (l.front() == ' ' || l.front() == '\t') throw HttpParseError{400, "obsolete header line folding"};
    size_t colon = l.find(':');
    if (colon == std::string_view::npos || colon == 0) throw HttpParseError{400, "malformed header line"};
    for (char c : l.substr(0, colon))
      if (!is_token_char(static_cast<unsigned char>(c))) throw HttpParseError{400, "malformed header name"};
    std::string name = lower(l.substr(0, colon));
    std::string value(trim(l.substr(colon + 1)));
    if (h.request.headers.size() >= 200) throw HttpParseError{431, "too many headers"};
    if (name == "content-length") {
      if (value.empty() || value.size() > 18 || !std::all_of(value.begin(), value.end(), ::isdigit))
        throw HttpParseError{400, "invalid Content-Length"};
      size_t n = std::strtoull(value.c_str(), nullptr, 10);
      if (has_length && n != h.content_length) throw HttpParseError{400, "conflicting Content-Length headers"};
      has_length = true;
      h.content_length = n;
    } else if (name == "transfer-encoding") {
      if (lower(value) != "chunked") throw HttpParseError{501, "only chunked transfer encoding is supported"};
      h.chunked = true;
    } else if (name == "expect") {
      if (lower(value) != "100-continue") throw HttpParseError{417, "unsupported Expect"};
      h.expect_continue = true;
    }
    h.request.headers.emplace_back(std::move(name), std::move(value));
  }
  if (h.chunked && has_length) throw HttpParseError{400, "both Content-Length and chunked encoding"};
  if (h.content_length > limits.max_body_bytes) throw HttpParseError{413, "the request body is too large"};
  const std::string* conn = h.request.header("connection");
  const std::string c = conn != nullptr ? lower(*conn) : "";
  h.keep_alive = h.request.version_minor == 1 ? c.find("close") == std::string::npos
                                              : c.find("keep-alive") != std::string::npos;
  return h;
}

size_t decode_chunked_body(std::string_view data, std::string& body, size_t max_body_bytes) {
  size_t pos = 0;
  std::string out;
  while (true) {
    size_t eol = data.find("\r\n", pos);
    if (eol == std::string_view::npos) {
      if (data.size() - pos > 64) throw HttpParseError{400, "malformed chunk size line"};
      return 0;
    }
    std::string_view size_line = data.substr(pos, eol - pos);
    size_line = size_line.substr(0, size_line.find(';'));  // chunk extensions are ignored
    if (size_line.empty() || size_line.size() > 15) throw HttpParseError{400, "malformed chunk size"};
    size_t n = 0;
    for (char c : size_line) {
      int v = hex_value(c);
      if (v < 0) throw HttpParseError{400, "malformed chunk size"};
      n = n * 16 + static_cast<size_t>(v);
    }
    if (out.size() + n > max_body_bytes) throw HttpParseError{413, "the request body is too large"};
    pos = eol + 2;
    if (n == 0) {
      // Trailers end with an empty line.
      size_t end = data.find("\r\n", pos);
      while (end != std::string_view::npos && end != pos) {
        pos = end + 2;
        end = data.find("\r\n", pos);
      }
      if (end == std::string_view::npos) return 0;
      body = std::move(out);
      return end + 2;
    }
    if (data.size() < pos + n + 2) return 0;
    out.append(data.substr(pos, n));
    if (data.substr(pos + n, 2) != "\r\n") throw HttpParseError{400, "chunk data not followed by CRLF"};
    pos += n + 2;
  }
}

const std::string* HttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return &v;
  return nullptr;
}

std::string HttpRequest::query_param(std::string_view name) const {
  std::string_view q = query;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view kv = q.substr(0, amp);
    size_t eq = kv.find('=');
    if (percent_decode(kv.substr(0, eq)) == name) return eq == std::string_view::npos ? "" : percent_decode(kv.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return "";
}

}  // namespace onellm
