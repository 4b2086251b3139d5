// Fill-in-the-middle prompts for code models: the code before and after the
// cursor (and optionally other files of the project) around the model's FIM
// tokens, as Qwen2.5-Coder, StarCoder and CodeLlama were trained:
//
//   [BOS] [REP]project\n [SEP]file\ntext ... [SEP]file\n   (other files, when the vocabulary has REP/SEP)
//   [PRE]prefix [SUF]suffix [MID]prompt
//
// What the model generates next is the middle. Used by the service's
// /infill, the "suffix" of /v1/completions and /api/generate, and `onellm run --suffix`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace onellm {

struct InfillFile {
  std::string name, text;
};

struct InfillInput {
  std::string prefix, suffix;
  std::string prompt;               // the start of the middle, if the caller has one
  std::vector<InfillFile> extra;    // other files for context, most relevant last
  std::string project = "project";  // the repository name after REP
  std::string file = "current";     // the name of the file being edited, after the last SEP
};

// The prompt's tokens, at most `budget` of them: when it would be longer, the
// other files are dropped from the front, then the prefix is cut from its
// start and the suffix from its end (3:1, as llama-server does). Throws
// Error if the vocabulary has no FIM tokens, or the budget cannot hold the
// FIM tokens and the prompt.
std::vector<int32_t> infill_tokens(const Tokenizer& tokenizer, const InfillInput& input, int64_t budget);

}  // namespace onellm
