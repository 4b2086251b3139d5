// Service pieces without the daemon: HTTP parsing, the TOML config, the
// session store's isolation and persistence, and the scheduler.
#include <gtest/gtest.h>

#include "base/error.h"
#include "service/http_server.h"
#include "service/qos_scheduler.h"
#include "service/service_config.h"
#include "service/session_store.h"
#include "support/test_paths.h"

namespace onellm {
namespace {

int parse_status(const std::string& head) {
  try {
    parse_http_head(head, HttpServerOptions{});
    return 0;
  } catch (const HttpParseError& e) {
    return e.status;
  }
}

TEST(HttpParser, RequestLineHeadersAndQuery) {
  HttpHead h = parse_http_head("POST /v1/sessions/a%20b/messages?x=1&y=%41 HTTP/1.1\r\nHost: x\r\n"
                               "Content-Length: 12\r\nAuthorization: Bearer t",
                               HttpServerOptions{});
  EXPECT_EQ(h.request.method, "POST");
  EXPECT_EQ(h.request.path, "/v1/sessions/a b/messages");
  EXPECT_EQ(h.request.query_param("y"), "A");
  EXPECT_EQ(h.content_length, 12u);
  ASSERT_NE(h.request.header("authorization"), nullptr);
  EXPECT_EQ(*h.request.header("authorization"), "Bearer t");
  EXPECT_TRUE(h.keep_alive);
  EXPECT_FALSE(parse_http_head("GET / HTTP/1.0", HttpServerOptions{}).keep_alive);
}

TEST(HttpParser, BadRequestsGetTheRightStatus) {
  EXPECT_EQ(parse_status("GARBAGE"), 400);
  EXPECT_EQ(parse_status("GET / HTTP/2.0"), 505);
  EXPECT_EQ(parse_status("GET nopath HTTP/1.1"), 400);
  EXPECT_EQ(parse_status("POST / HTTP/1.1\r\nContent-Length: abc"), 400);
  EXPECT_EQ(parse_status("POST / HTTP/1.1\r\nContent-Length: 99999999999"), 413);
  EXPECT_EQ(parse_status("POST / HTTP/1.1\r\nTransfer-Encoding: gzip"), 501);
  EXPECT_EQ(parse_status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3"), 400);
  EXPECT_EQ(parse_status("GET / HTTP/1.1\r\n" + std::string(70000, 'a') + ": b"), 431);
}

TEST(HttpParser, ChunkedBodies) {
  std::string body;
  EXPECT_EQ(decode_chunked_body("5\r\nhello\r\n", body, 100), 0u);  // incomplete
  std::string in = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\nNEXT";
  EXPECT_EQ(decode_chunked_body(in, body, 100), in.size() - 4);
  EXPECT_EQ(body, "hello world");
  EXPECT_THROW(decode_chunked_body("zz\r\n", body, 100), HttpParseError);
  EXPECT_THROW(decode_chunked_body("ff\r\n", body, 100), HttpParseError);  // over the limit
}

TEST(ServiceConfig, ParsesAppsAndClassesAndNamesErrors) {
  ServiceConfig c = ServiceConfig::from_toml(R"(
[service]
prefill_chunk = 64
[qos.voice]
ttft_ms = 200
[[app]]
id = "a"
uids = [1000]
qos = ["voice"]
default_qos = "voice"
requests_per_minute = 5
[[app]]
id = "b"
token = "secret"
)",
                                             "test.toml");
  EXPECT_EQ(c.prefill_chunk, 64);
  EXPECT_EQ(c.find_qos("voice")->ttft_ms, 200);
  EXPECT_EQ(c.app_for_uid(1000)->id, "a");
  EXPECT_EQ(c.app_for_token("secret")->id, "b");
  EXPECT_EQ(c.app_for_token("nope"), nullptr);
  EXPECT_EQ(c.find_app("a")->quota.requests_per_minute, 5);
  auto error_of = [](const std::string& toml) -> std::string {
    try {
      ServiceConfig::from_toml(toml, "bad.toml");
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(error_of("[[app]]\nid = \"x\"\n").find("token or uids"), std::string::npos);
  EXPECT_NE(error_of("[[app]]\nid = \"x\"\ntoken=\"t\"\nqos=[\"warp\"]").find("warp"), std::string::npos);
  EXPECT_NE(error_of("[[app]\n").find("bad.toml:1"), std::string::npos);
  EXPECT_NE(error_of("").find("no [[app]]"), std::string::npos);
}

TEST(SessionStore, AppsAreIsolatedAndDataPersists) {
  test::TempDir dir;
  std::string id;
  {
    SessionStore s(dir.file("s.db"));
    SessionRecord r = s.create("mail", "inbox", "Be brief.", "chat");
    id = r.id;
    s.append("mail", id, nlohmann::ordered_json::array({{{"role", "user"}, {"content", "hi \xff"}}}));
    EXPECT_FALSE(s.get("notes", id).has_value());  // another app
    EXPECT_FALSE(s.remove("notes", id));
    EXPECT_EQ(s.list("notes").size(), 0u);
    EXPECT_EQ(s.get("mail", "inbox")->id, id);  // by name
    s.add_usage("mail", 10);
    s.add_usage("mail", 5);
  }
  SessionStore again(dir.file("s.db"));
  auto r = again.get("mail", id);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->messages.size(), 1u);
  EXPECT_EQ(again.usage_today("mail"), 15);
  EXPECT_TRUE(again.remove("mail", id));
  EXPECT_FALSE(again.get("mail", id).has_value());
  EXPECT_THROW(SessionStore(dir.file("no/such/dir/s.db")), Error);
}

// A session keeps the adapter it was created with; a database written before
// sessions had adapters opens with its sessions on the base model.
TEST(SessionStore, AdapterColumnIsKeptAndAddedToOldDatabases) {
  test::TempDir dir;
  {
    SqliteDb old(dir.file("old.db"), "old session database");
    old.exec("CREATE TABLE sessions(id TEXT PRIMARY KEY, app TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',"
             " instructions TEXT NOT NULL DEFAULT '', qos TEXT NOT NULL, created REAL, updated REAL,"
             " messages TEXT NOT NULL DEFAULT '[]')");
    old.exec("INSERT INTO sessions VALUES('sess_1', 'mail', 'inbox', '', 'chat', 1, 1, '[]')");
  }
  std::string id;
  {
    SessionStore s(dir.file("old.db"));
    auto r = s.get("mail", "sess_1");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->adapter, "");
    EXPECT_EQ(r->name, "inbox");
    id = s.create("mail", "styled", "", "chat", "formal").id;
  }
  SessionStore again(dir.file("old.db"));
  EXPECT_EQ(again.get("mail", id)->adapter, "formal");
  EXPECT_EQ(again.list("mail").size(), 2u);
}

}  // namespace
}  // namespace onellm
