// onellm quantize: a GGUF model written again in another type, or in one of
// the named mixes llama.cpp's users know (Q4_K_M: most matrices Q4_K, the
// output and some attn_v / ffn_down layers Q6_K). Tensor by tensor and a
// block of rows at a time, so memory stays near one block whatever the size.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "kernels/kernels.h"

namespace onellm {

// A named recipe: the type most matrices get and the general.file_type id
// (llama_ftype) the output declares.
struct QuantizeRecipe {
  const char* name;
  TensorType base;
  int file_type;
};
// "Q4_K_M", "q8_0", "F16" ...; "Q4_K" means Q4_K_M, "Q5_K" Q5_K_M and "Q3_K"
// Q3_K_M, as in llama-quantize. Throws Error listing the known names.
const QuantizeRecipe& quantize_recipe(const std::string& name);
std::string quantize_recipe_names();  // "F32, F16, ..." for help and errors

struct QuantizeOptions {
  std::string recipe = "Q4_K_M";
  std::optional<TensorType> output_type;           // output.weight, or the tied embedding
  std::optional<TensorType> token_embedding_type;  // token_embd.weight when it is not the output
  bool pure = false;              // every quantized tensor gets the base type (no mix)
  bool allow_requantize = false;  // accept already quantized inputs
  size_t block_bytes = size_t{16} << 20;  // output bytes converted per block (memory; tests make it small)
};

// What happens to one tensor.
struct TensorPlan {
  std::string name;
  TensorType from, to;
  bool converted;  // false: copied byte for byte
  bool fallback;   // `to` replaced a type whose blocks do not divide the row
};
// The type of every tensor of `in`, in file order. Throws Error naming the
// tensor for one that cannot be converted (a type onellm cannot read, an
// already quantized input without allow_requantize).
std::vector<TensorPlan> plan_quantization(const GgufFile& in, const QuantizeOptions& options);

struct QuantizeReport {
  std::vector<TensorPlan> plan;
  uint64_t in_bytes = 0, out_bytes = 0;  // tensor data
};
// Writes `in` converted as planned to out_path (atomically: a temporary file
// renamed into place). Rows are split over pool's threads; the bytes do not
// depend on the thread count. progress(done, total tensor bytes) after each
// block of rows.
QuantizeReport quantize_gguf(const GgufFile& in, const std::string& out_path, const QuantizeOptions& options,
                             ThreadPool* pool, const std::function<void(uint64_t, uint64_t)>& progress = nullptr);

}  // namespace onellm
