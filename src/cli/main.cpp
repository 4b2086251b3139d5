// onellm command line: dispatches to one subcommand. Errors are reported on
// stderr with exit code 1; usage errors with exit code 2.
#include <cstdio>
#include <cstring>
#include <string>

#include "base/error.h"
#include "cli/commands.h"

namespace {

constexpr const char* kUsage =
    "usage: onellm <command> [options]\n"
    "\n"
    "commands:\n"
    "  run       -m MODEL -p PROMPT [-n N] [--temp T] [--json]   generate text\n"
    "  chat      -m MODEL                                         interactive chat with the model's template\n"
    "            (run, chat: --lora ADAPTER.gguf applies a LoRA adapter at run time)\n"
    "  tokenize  -m MODEL [--file F]                              one JSON array of ids per input line\n"
    "  logits    -m MODEL (-p PROMPT | --tokens 1,2,3) [--top K] [--fast] [--decode-from N]\n"
    "            per-position top-K logits as JSON; from token N on, one token per pass as generation runs\n"
    "  embed     -m MODEL (-p TEXT | -f FILE | --tokens 1,2,3) [--pooling mean|cls|last]  embeddings as JSON\n"
    "  perplexity -m MODEL -f TEXT [-c 512] [--kl-divergence-base F [--kl-divergence]]  llama-perplexity's PPL, KLD\n"
    "  info      MODEL                                            architecture, sizes, tensor types\n"
    "  template  [-m MODEL] [--request FILE] [--tokens]           the prompt a chat request renders to\n"
    "  serve     -m MODEL [--socket PATH] [--http 127.0.0.1:PORT] [--config FILE]  the LLM service\n"
    "  ask       [--session NAME] \"message\"                    ask the running service\n"
    "  loadgen   TRACE.json [--address A] [--json]                replay a multi-app trace, per-class latency\n"
    "  bench     -m MODEL [-p 128,512] [-n 64] [-t N] [-r 3] [--json]  throughput like llama-bench\n"
    "  bench-context -m MODEL [--sessions 4] [--tokens 2048] [--budget B]  KV resume vs re-prefill, compression\n"
    "  make-tiny-model --arch A --type T [--seed S] -o FILE       write a random-weight model\n"
    "  quantize  IN.gguf OUT.gguf TYPE [-t N]                     another type or mix (Q4_K_M, Q8_0, F16 ...)\n"
    "  train     --corpus TEXT (--tokenizer GGUF | --init GGUF | --resume CKPT) --out GGUF  train a model\n"
    "  finetune  --lora [--base GGUF] --corpus TEXT --out ADAPTER.gguf  train a LoRA adapter on a frozen model\n"
    "  train-tokenizer --corpus TEXT --vocab-size N -o GGUF       train a byte-level BPE tokenizer\n"
    "  make-corpus --seed S --out DIR [--induction N] [--induction-made-up P] [--induction-quoted P] [--induction-clock P] [--p-vary P] [--p-mix P] [--p-unknown P]\n"
    "                                                             generate the device-assistant corpus\n"
    "  agent     --mcp \"CMD ARGS\" [--url U | -m MODEL] \"request\"   the agent loop on MCP tools\n"
    "  eval-agent TASKS.jsonl [--url U | -m MODEL] [--json]       agent tasks judged on the simulated device\n"
    "  device-mcp [--state FILE] [--http PORT]                    the simulated device as an MCP server\n"
    "  device-state FILE [--path P] [--check PRED]                inspect a saved simulated device\n"
    "  mcp-call  (--mcp \"CMD\" | --mcp-http URL) (--list | TOOL ARGS)  one MCP round trip\n"
    "  gui-agent --app APP -m MODEL \"task\" | --task ID --oracle   GUI agent on a simulated app (or --adb)\n"
    "  eval-gui  TASKS_DIR [--traces DIR]                         evaluate GUI traces by essential states\n"
    "  gui-oracle [--tasks DIR] --out DIR [--variants]            golden traces from the tasks' oracle scripts\n"
    "  gui-screens -m MODEL DIR                                   prompt tokens per screen: raw XML vs compact forms\n"
    "\n"
    "run 'onellm <command> --help' for the options of one command.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  using namespace onellm::cli;
  try {
    if (command == "run") return run_command(argc, argv);
    if (command == "chat") return chat_command(argc, argv);
    if (command == "tokenize") return tokenize_command(argc, argv);
    if (command == "logits") return logits_command(argc, argv);
    if (command == "embed") return embed_command(argc, argv);
    if (command == "perplexity") return perplexity_command(argc, argv);
    if (command == "template") return template_command(argc, argv);
    if (command == "info") return info_command(argc, argv);
    if (command == "bench") return bench_command(argc, argv);
    if (command == "bench-context") return bench_context_command(argc, argv);
    if (command == "serve") return serve_command(argc, argv);
    if (command == "ask") return ask_command(argc, argv);
    if (command == "loadgen") return loadgen_command(argc, argv);
    if (command == "make-tiny-model") return make_tiny_model_command(argc, argv);
    if (command == "quantize") return quantize_command(argc, argv);
    if (command == "train") return train_command(argc, argv);
    if (command == "finetune") return finetune_command(argc, argv);
    if (command == "train-tokenizer") return train_tokenizer_command(argc, argv);
    if (command == "make-corpus") return make_corpus_command(argc, argv);
    if (command == "agent") return agent_command(argc, argv);
    if (command == "eval-agent") return eval_agent_command(argc, argv);
    if (command == "device-mcp") return device_mcp_command(argc, argv);
    if (command == "device-state") return device_state_command(argc, argv);
    if (command == "mcp-call") return mcp_call_command(argc, argv);
    if (command == "gui-agent") return gui_agent_command(argc, argv);
    if (command == "eval-gui") return eval_gui_command(argc, argv);
    if (command == "gui-oracle") return gui_oracle_command(argc, argv);
    if (command == "gui-screens") return gui_screens_command(argc, argv);
    std::fprintf(stderr, "onellm: unknown command '%s'\n\n%s", command.c_str(), kUsage);
    return 2;
  } catch (const onellm::Error& e) {
    std::fprintf(stderr, "onellm %s: error: %s\n", command.c_str(), e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "onellm %s: internal error: %s\n", command.c_str(), e.what());
    return 1;
  }
}
