// Prompt-lookup decoding (speculation without a draft model): when the text
// being generated repeats part of its context (a tool call copying the
// request's words, an edit of a given text, a quoted passage), the tokens
// that followed the context's last few tokens where they occurred before are
// a good guess of what comes next. The guess is checked by evaluating it in
// one forward pass with the next token; each position is still sampled from
// the model's own distribution, so the output is what plain decoding gives,
// only with fewer passes over the weights.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace onellm {

// The draft: up to max_draft tokens that followed the latest earlier
// occurrence of the context's last n tokens, for the longest n from
// kLookupMaxNgram down to kLookupMinNgram that occurs; empty if none does.
inline constexpr size_t kLookupMaxNgram = 4, kLookupMinNgram = 2;
std::vector<int32_t> lookup_draft(const std::vector<int32_t>& context, size_t max_draft);

// The guesses per pass when a prediction is given and the caller set none.
inline constexpr int32_t kPredictionDraft = 8;

// The draft from a text the caller expects the output to repeat (OpenAI's
// predicted outputs): with nothing generated yet, the prediction's first
// tokens; then the tokens after an occurrence in the prediction of the
// generated text's last n tokens (n = kLookupMaxNgram down to 1, longest
// first), the first one at or after *cursor - n, else the latest anywhere.
// *cursor (0 at the start) tracks where in the prediction the output is:
// it becomes the draft's start.
std::vector<int32_t> predicted_draft(const std::vector<int32_t>& predicted, const std::vector<int32_t>& generated,
                                     size_t max_draft, size_t* cursor);

}  // namespace onellm
