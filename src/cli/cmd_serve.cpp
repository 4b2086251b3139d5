// onellm serve: the device's LLM service in the foreground. SIGTERM/SIGINT
// drain gracefully, SIGHUP reloads the config; readiness is announced on
// stderr, through $NOTIFY_SOCKET (systemd protocol) and an optional file.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "base/error.h"
#include "cli/commands.h"
#include "context/context.h"
#include "engine/copy_bias.h"
#include "service/service.h"

namespace onellm::cli {
namespace {

std::string default_socket_path() {
  if (const char* dir = std::getenv("XDG_RUNTIME_DIR")) return std::string(dir) + "/onellm.sock";
  return "/tmp/onellm-" + std::to_string(::getuid()) + ".sock";
}

std::string default_state_dir() {
  if (const char* dir = std::getenv("XDG_STATE_HOME")) return std::string(dir) + "/onellm";
  if (const char* home = std::getenv("HOME")) return std::string(home) + "/.local/state/onellm";
  return "/tmp/onellm-state-" + std::to_string(::getuid());
}

void notify_ready(const std::string& ready_file, const std::string& socket_path, int port) {
  std::fprintf(stderr, "{\"event\":\"ready\",\"socket\":\"%s\",\"http_port\":%d}\n", socket_path.c_str(), port);
  if (!ready_file.empty()) {
    // Written whole, then renamed into place: a supervisor that polls for the
    // file never reads it empty or half written.
    const std::string tmp = ready_file + ".tmp";
    { std::ofstream(tmp) << "socket=" << socket_path << "\nhttp_port=" << port << "\n"; }
    if (std::rename(tmp.c_str(), ready_file.c_str()) != 0)
      std::fprintf(stderr, "onellm serve: cannot write the ready file %s: %s\n", ready_file.c_str(),
                   std::strerror(errno));
  }
  if (const char* ns = std::getenv("NOTIFY_SOCKET")) {
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::strncpy(addr.sun_path, ns, sizeof(addr.sun_path) - 1);
      if (addr.sun_path[0] == '@') addr.sun_path[0] = 0;  // abstract namespace
      const char msg[] = "READY=1";
      ::sendto(fd, msg, sizeof msg - 1, 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
      ::close(fd);
    }
  }
}

}  // namespace

int serve_command(int argc, char** argv) {
  Args a(argc, argv, 2,
         {"-m", "--model", "--socket", "--http", "--config", "--state-dir", "-t", "--threads", "--ready-file",
          "--kv-budget", "--kv-chunk", "--kv-compress", "--kv-type", "--kv-restore", "--lora", "--copy-bias", "--min-call-prob",
           "--lookup-draft"},
         {"--log-content", "--no-socket", "--no-builtin-tools", "-h", "--help"});
  if (a.flag({"-h", "--help"})) {
    std::puts("onellm serve -m MODEL [--socket PATH | --no-socket] [--http 127.0.0.1:PORT] [--config FILE]\n"
              "             [--state-dir DIR] [-t THREADS] [--ready-file FILE] [--log-content]\n"
              "             [--kv-budget BYTES (K/M/G suffix, default 256M)] [--kv-chunk TOKENS (default 32)]\n"
              "             [--kv-compress int8|int4|int2 (deepest in-memory format of rarely attended\n"
              "              KV chunks, default int4; well-attended chunks stop at int8)]\n"
              "             [--kv-type f16|q8_0|f32 (live KV caches, default f16)]\n"
              "             [--kv-restore auto|load (a session's chunks on disk: loaded when cheaper than\n"
              "              recomputing, as measured at start-up, or always; default auto)]\n"
              "             [--lora NAME=ADAPTER.gguf ... (LoRA adapters that sessions and requests name:\n"
              "              POST /v1/sessions {\"adapter\": NAME}, or \"model\": NAME in OpenAI requests)]\n"
              "             [--copy-bias B (default copy_bias of chat requests: copy-aware decoding of\n"
              "              tool-call arguments; default: the model's onellm.copy_bias, else 0)]\n"
              "             [--min-call-prob P (default min_call_probability of chat requests: a tool call\n"
              "              starts only where the model is this sure of one; default: the model's\n"
              "              onellm.min_call_probability, else 0)]\n"
              "             [--no-builtin-tools (requests without tools: calls are not held to the model's\n"
              "              built-in tools, onellm.builtin_tools)]\n"
              "             [--lookup-draft N (prompt-lookup decoding for requests that do not set\n"
              "              \"lookup_draft\": each decode pass also checks up to N tokens guessed from the\n"
              "              context; same output, fewer passes where replies copy their context; default 0)]");
    return 0;
  }
  ServeOptions o;
  o.model_path = model_path_or_default(a);
  o.config_path = a.get_or({"--config"}, "");
  o.state_dir = a.get_or({"--state-dir"}, default_state_dir());
  o.threads = static_cast<int>(a.get_int({"-t", "--threads"}, 0));
  o.log_content = a.flag({"--log-content"});
  o.kv_budget = parse_byte_size(a.get_or({"--kv-budget"}, "256M"), "--kv-budget");
  o.kv_chunk_tokens = a.get_int({"--kv-chunk"}, 32);
  o.kv_compress = a.get_or({"--kv-compress"}, "int4");
  o.kv_type = kv_type_from_args(a);
  parse_kv_format(o.kv_compress);  // a bad name fails here, before the model loads
  o.kv_restore = a.get_or({"--kv-restore"}, "auto");
  if (o.kv_restore != "auto" && o.kv_restore != "load")
    throw Error("--kv-restore takes auto or load, got '" + o.kv_restore + "'");
  if (a.get({"--copy-bias"})) o.copy_bias = checked_copy_bias(a.get_double({"--copy-bias"}, 0.0), "--copy-bias");
  if (a.get({"--min-call-prob"}))
    o.min_call_probability = checked_min_call_probability(a.get_double({"--min-call-prob"}, 0.0), "--min-call-prob");
  o.builtin_tools = !a.flag({"--no-builtin-tools"});
  o.lookup_draft = static_cast<int32_t>(a.get_int({"--lookup-draft"}, 0));
  if (o.lookup_draft < 0 || o.lookup_draft > 64) throw Error("--lookup-draft takes 0 to 64 tokens");
  for (const std::string& spec : a.get_all("--lora")) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
      throw Error("--lora takes NAME=ADAPTER.gguf, got '" + spec + "'");
    o.adapters.emplace_back(spec.substr(0, eq), spec.substr(eq + 1));
  }

  // Signals are taken synchronously by this thread; every other thread
  // inherits the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  Service service(o);
  HttpServer server([&](const HttpRequest& rq, HttpResponse& rs) { service.handle(rq, rs); });
  std::string socket_path;
  if (!a.flag({"--no-socket"})) {
    socket_path = a.get_or({"--socket"}, default_socket_path());
    server.listen_unix(socket_path, 0666);
  }
  int port = -1;
  if (auto http = a.get({"--http"})) {
    size_t colon = http->rfind(':');
    if (colon == std::string::npos) throw Error("--http wants HOST:PORT, got '" + *http + "'");
    const std::string host = http->substr(0, colon);
    if (host != "127.0.0.1" && host != "localhost" && host != "::1")
      throw Error("--http must listen on loopback (127.0.0.1, ::1), not '" + host + "'");
    port = server.listen_tcp(host == "localhost" ? "127.0.0.1" : host, std::atoi(http->substr(colon + 1).c_str()));
  }
  if (socket_path.empty() && port < 0) throw Error("nothing to listen on (--no-socket without --http)");
  server.start();
  notify_ready(a.get_or({"--ready-file"}, ""), socket_path, port);

  while (true) {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGHUP) {
      service.reload_config();
      continue;
    }
    std::fprintf(stderr, "{\"event\":\"draining\",\"signal\":%d,\"active\":%zu}\n", sig, server.active_requests());
    service.drain();
    server.stop(30000);
    if (!socket_path.empty()) ::unlink(socket_path.c_str());
    std::fprintf(stderr, "{\"event\":\"stopped\"}\n");
    return 0;
  }
}

}  // namespace onellm::cli
