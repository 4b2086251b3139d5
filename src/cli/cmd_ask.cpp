// onellm ask: one question to the running service, through the C client
// library an app would use. Streams the reply to stdout.
#include <cstdio>
#include <string>

#include "base/error.h"
#include "cli/commands.h"
#include "client/onellm_client.h"

namespace onellm::cli {

int ask_command(int argc, char** argv) {
  Args a(argc, argv, 2, {"--session", "--socket", "--url", "--token", "-n", "--max-tokens", "--temp", "--seed", "--qos",
                         "--instructions", "--adapter"},
         {"-h", "--help"});
  if (a.flag({"-h", "--help"}) || a.positional().empty()) {
    std::puts("onellm ask [--session NAME] [--instructions TEXT] [--socket PATH | --url http://127.0.0.1:PORT]\n"
              "           [--token T] [-n N] [--temp T] [--seed S] [--qos CLASS] [--adapter NAME] \"message\"");
    return a.positional().empty() && !a.flag({"-h", "--help"}) ? 2 : 0;
  }
  std::string message;
  for (const std::string& p : a.positional()) message += (message.empty() ? "" : " ") + p;
  std::string address;
  if (auto s = a.get({"--socket"})) address = "unix:" + *s;
  if (auto u = a.get({"--url"})) address = *u;
  std::string token = a.get_or({"--token"}, "");
  onellm_client* client = onellm_client_new(address.empty() ? nullptr : address.c_str(), token.empty() ? nullptr : token.c_str());
  if (client == nullptr) throw Error("out of memory");
  onellm_options o;
  onellm_options_init(&o);
  o.max_tokens = static_cast<int>(a.get_int({"-n", "--max-tokens"}, 0));
  o.temperature = static_cast<float>(a.get_double({"--temp"}, -1));
  o.seed = a.get_int({"--seed"}, -1);
  std::string qos = a.get_or({"--qos"}, "");
  if (!qos.empty()) o.qos = qos.c_str();
  std::string adapter = a.get_or({"--adapter"}, "");  // a LoRA adapter the service serves
  if (!adapter.empty()) o.adapter = adapter.c_str();
  auto print = [](const char* text, size_t n, void*) {
    std::fwrite(text, 1, n, stdout);
    std::fflush(stdout);
    return 1;
  };
  int rc;
  if (auto name = a.get({"--session"})) {
    char id[128];
    std::string instructions = a.get_or({"--instructions"}, "");
    rc = onellm_session_open_with_adapter(client, name->c_str(), instructions.empty() ? nullptr : instructions.c_str(),
                                          o.qos, o.adapter, id, sizeof id);
    if (rc == ONELLM_OK) rc = onellm_session_send(client, id, message.c_str(), &o, print, nullptr, nullptr);
  } else {
    rc = onellm_chat(client, message.c_str(), &o, print, nullptr, nullptr);
  }
  std::fputc('\n', stdout);
  std::string error = onellm_last_error(client), code = onellm_last_error_code(client);
  onellm_client_free(client);
  if (rc != ONELLM_OK) throw Error(code + ": " + error);
  return 0;
}

}  // namespace onellm::cli
