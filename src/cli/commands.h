// One function per subcommand; each returns the process exit code.
#pragma once

#include <memory>
#include <string>

#include "cli/args.h"
#include "engine/engine.h"

namespace onellm::cli {

int run_command(int argc, char** argv);
int chat_command(int argc, char** argv);
int tokenize_command(int argc, char** argv);
int logits_command(int argc, char** argv);
int embed_command(int argc, char** argv);
int perplexity_command(int argc, char** argv);
int info_command(int argc, char** argv);
int template_command(int argc, char** argv);
int make_tiny_model_command(int argc, char** argv);
int quantize_command(int argc, char** argv);
int bench_command(int argc, char** argv);
int bench_context_command(int argc, char** argv);
int serve_command(int argc, char** argv);
int ask_command(int argc, char** argv);
int loadgen_command(int argc, char** argv);
int train_command(int argc, char** argv);
int finetune_command(int argc, char** argv);
int train_tokenizer_command(int argc, char** argv);
int make_corpus_command(int argc, char** argv);
int device_mcp_command(int argc, char** argv);
int device_state_command(int argc, char** argv);
int mcp_call_command(int argc, char** argv);
int agent_command(int argc, char** argv);
int eval_agent_command(int argc, char** argv);
int gui_agent_command(int argc, char** argv);
int gui_oracle_command(int argc, char** argv);
int eval_gui_command(int argc, char** argv);
int gui_screens_command(int argc, char** argv);

// A loaded model with its tokenizer and thread pool, as every command needs.
struct LoadedModel {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<ThreadPool> pool;
};
// lora_path: a LoRA adapter GGUF applied at run time ("" for none).
LoadedModel load_model(const std::string& path, int n_threads, const std::string& lora_path = "");
int default_threads();
// "1,2,3" (--tokens): token ids; Error naming an item that is not one.
std::vector<int32_t> parse_token_list(const std::string& s);
// The whole file; Error naming the path if it cannot be read.
std::string read_text_file(const std::string& path);

// --chat-template NAME|FILE, else the model's own template, else ChatML (with
// a note on stderr).
std::string chat_template_source(const Args& args, const GgufFile& model_file);

// Options shared by run and chat.
extern const char* const kSamplingOptions[];
SamplingParams sampling_from_args(const Args& args);
// --kv-type f16|q8_0|f32 (default f16): the KV cache element type.
TensorType kv_type_from_args(const Args& args);

}  // namespace onellm::cli
