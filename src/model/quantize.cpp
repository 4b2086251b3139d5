// onellm quantize (see quantize.h). The mixes follow the rules llama.cpp's
// llama-quantize applies, so that a Q4_K_M written here has the types per
// tensor a user expects from that name (docs/benchmarks.md, "Session 43",
// compares them tensor by tensor): more bits where a model is known to be
// sensitive (the output, attn_v and ffn_down of the first and last eighth of
// the layers and every third one between), and a row-compatible type where a
// K-quant's 256-element blocks do not divide a row (Qwen2.5-0.5B's 896).
// Not covered: importance matrices, the IQ1-IQ3 types, and llama.cpp's
// special cases for MoE, Falcon and 70B models, which onellm does not run.
#include "model/quantize.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>

#include "base/error.h"

namespace onellm {
namespace {

// llama_ftype ids of the recipes whose mix has rules of its own.
enum FileType : int {
  kQ2_K = 10, kQ3_K_M = 12, kQ3_K_L = 13, kQ4_K_S = 14, kQ4_K_M = 15, kQ5_K_M = 17, kQ2_K_S = 21,
  kIQ4_NL = 25, kIQ4_XS = 30,
};

constexpr QuantizeRecipe kRecipes[] = {
    {"F32", TensorType::F32, 0},
    {"F16", TensorType::F16, 1},
    {"BF16", TensorType::BF16, 32},
    {"Q4_0", TensorType::Q4_0, 2},
    {"Q4_1", TensorType::Q4_1, 3},
    {"Q5_0", TensorType::Q5_0, 8},
    {"Q5_1", TensorType::Q5_1, 9},
    {"Q8_0", TensorType::Q8_0, 7},
    {"Q2_K", TensorType::Q2_K, kQ2_K},
    {"Q2_K_S", TensorType::Q2_K, kQ2_K_S},
    {"Q3_K_S", TensorType::Q3_K, 11},
    {"Q3_K_M", TensorType::Q3_K, kQ3_K_M},
    {"Q3_K_L", TensorType::Q3_K, kQ3_K_L},
    {"Q4_K_S", TensorType::Q4_K, kQ4_K_S},
    {"Q4_K_M", TensorType::Q4_K, kQ4_K_M},
    {"Q5_K_S", TensorType::Q5_K, 16},
    {"Q5_K_M", TensorType::Q5_K, kQ5_K_M},
    {"Q6_K", TensorType::Q6_K, 18},
    {"IQ4_NL", TensorType::IQ4_NL, kIQ4_NL},
    {"IQ4_XS", TensorType::IQ4_XS, kIQ4_XS},
};

bool is_float_type(TensorType t) { return t == TensorType::F32 || t == TensorType::F16 || t == TensorType::BF16; }

// The types quantize_row can write.
bool can_write(TensorType t) {
  for (const QuantizeRecipe& r : kRecipes)
    if (r.base == t) return true;
  return false;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}
bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// Matrices only: norms, biases, rope factors, MoE routers and position or
// token-type tables stay as they are (small, or precision-critical).
bool is_quantizable(const GgufTensor& t) {
  const std::string& n = t.name;
  return ends_with(n, "weight") && t.dims.size() >= 2 && !contains(n, "_norm.weight") &&
         !contains(n, "ffn_gate_inp.weight") && n != "position_embd.weight" && n != "token_types.weight" &&
         !contains(n, "ssm_conv1d.weight");
}

// The layer of "blk.N.…", or -1.
int layer_of(const std::string& name) {
  int layer = -1;
  if (std::sscanf(name.c_str(), "blk.%d.", &layer) != 1) return -1;
  return layer;
}

struct ModelFacts {
  int n_layer = 0;
  int64_t n_gqa = 1;  // query heads per KV head
  bool has_output = false;
};

ModelFacts model_facts(const GgufFile& in) {
  ModelFacts f;
  const std::string arch = in.get_string_or("general.architecture", "");
  f.n_layer = static_cast<int>(in.get_int_or(arch + ".block_count", 0));
  const GgufValue* heads = in.find(arch + ".attention.head_count");
  const GgufValue* kv = in.find(arch + ".attention.head_count_kv");
  // Per-layer head counts are arrays; the first layer stands for the model here.
  const auto first = [](const GgufValue* v) -> int64_t {
    if (v == nullptr) return 0;
    if (v->type == GgufType::ARRAY) return v->size() > 0 ? v->int_at(0) : 0;
    return v->is_integer() ? v->as_int() : 0;
  };
  const int64_t h = first(heads), k = first(kv);
  if (h > 0 && k > 0) f.n_gqa = h / k;
  f.has_output = in.find_tensor("output.weight") != nullptr;
  return f;
}

// llama.cpp's use_more_bits: the first and last eighth of the layers and
// every third layer between them.
bool more_bits(int layer, int n_layer) {
  return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

// The mix rules of the K-quant and IQ4 recipes for one matrix.
TensorType mixed_type(const QuantizeRecipe& recipe, const ModelFacts& m, const std::string& name, TensorType type) {
  const int ft = recipe.file_type, layer = std::max(0, layer_of(name)), n = std::max(1, m.n_layer);
  if (name == "output.weight" || (!m.has_output && name == "token_embd.weight")) {
    if (type == TensorType::Q8_0) return type;
    return TensorType::Q6_K;  // a row the 256-blocks do not divide falls back to Q8_0 below
  }
  if (name == "token_embd.weight") return type;
  if (contains(name, "attn_v.weight")) {
    if (ft == kQ2_K) return m.n_gqa >= 4 ? TensorType::Q4_K : TensorType::Q3_K;
    if (ft == kQ2_K_S && m.n_gqa >= 4) return TensorType::Q4_K;
    if (ft == kQ3_K_M) return layer < 2 ? TensorType::Q5_K : TensorType::Q4_K;
    if (ft == kQ3_K_L) return TensorType::Q5_K;
    if ((ft == kIQ4_NL || ft == kIQ4_XS) && m.n_gqa >= 4) return TensorType::Q5_K;
    if ((ft == kQ4_K_M || ft == kQ5_K_M) && more_bits(layer, n)) return TensorType::Q6_K;
    if (ft == kQ4_K_S && layer < 4) return TensorType::Q5_K;
    return type;
  }
  if (contains(name, "ffn_down")) {
    if (ft == kQ2_K) return TensorType::Q3_K;
    if (ft == kQ2_K_S) return layer < n / 8 ? TensorType::Q4_K : type;
    if (ft == kQ3_K_M) return layer < n / 16 ? TensorType::Q5_K : TensorType::Q4_K;
    if (ft == kQ3_K_L) return TensorType::Q5_K;
    if (ft == kQ4_K_M) return more_bits(layer, n) ? TensorType::Q6_K : type;
    if ((ft == kIQ4_NL || ft == kIQ4_XS) && layer < n / 8) return TensorType::Q5_K;
    if (ft == kQ5_K_M && more_bits(layer, n)) return TensorType::Q6_K;
    if (ft == kQ4_K_S && layer < n / 8) return TensorType::Q5_K;
    return type;
  }
  if (contains(name, "attn_output.weight")) {
    if (ft == kQ2_K) return TensorType::Q3_K;
    if (ft == kQ3_K_M) return TensorType::Q4_K;
    if (ft == kQ3_K_L) return TensorType::Q5_K;
    return type;
  }
  if (contains(name, "attn_qkv.weight")) {
    if (ft == kQ3_K_M || ft == kQ3_K_L) return TensorType::Q4_K;
    if (ft == kQ4_K_M) return TensorType::Q5_K;
    if (ft == kQ5_K_M) return TensorType::Q6_K;
  }
  return type;
}

// A type whose blocks divide a row of `cols`: the nearest one in size, as
// llama.cpp picks it, else F16.
TensorType row_compatible(TensorType type, int64_t cols, bool& fell_back) {
  fell_back = false;
  if (cols % tensor_type_info(type).block_elems == 0) return type;
  fell_back = true;
  TensorType alt = TensorType::F16;
  switch (type) {
    case TensorType::Q2_K: case TensorType::Q3_K: case TensorType::IQ4_XS: alt = TensorType::IQ4_NL; break;
    case TensorType::Q4_K: alt = TensorType::Q5_0; break;
    case TensorType::Q5_K: alt = TensorType::Q5_1; break;
    case TensorType::Q6_K: alt = TensorType::Q8_0; break;
    default: break;
  }
  return cols % tensor_type_info(alt).block_elems == 0 ? alt : TensorType::F16;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

const QuantizeRecipe& quantize_recipe(const std::string& name) {
  std::string n = upper(name);
  if (n == "Q4_K" || n == "Q5_K" || n == "Q3_K") n += "_M";
  for (const QuantizeRecipe& r : kRecipes)
    if (n == r.name) return r;
  throw Error("unknown quantization type '" + name + "' (known: " + quantize_recipe_names() + ")");
}

std::string quantize_recipe_names() {
  std::string out;
  for (const QuantizeRecipe& r : kRecipes) out += (out.empty() ? "" : ", ") + std::string(r.name);
  return out;
}

std::vector<TensorPlan> plan_quantization(const GgufFile& in, const QuantizeOptions& options) {
  const QuantizeRecipe& recipe = quantize_recipe(options.recipe);
  for (const std::optional<TensorType>& t : {options.output_type, options.token_embedding_type})
    if (t && !can_write(*t))
      throw Error("quantize: onellm cannot write tensors of type " + tensor_type_name(static_cast<uint32_t>(*t)));
  const ModelFacts facts = model_facts(in);
  const bool mix = !options.pure && !is_float_type(recipe.base);
  std::vector<TensorPlan> plan;
  for (const GgufTensor& t : in.tensors()) {
    TensorPlan p{t.name, t.type, t.type, false, false};
    if (is_quantizable(t)) {
      TensorType to = mix ? mixed_type(recipe, facts, t.name, recipe.base) : recipe.base;
      const bool is_output = t.name == "output.weight" || (!facts.has_output && t.name == "token_embd.weight");
      if (is_output && options.output_type) to = *options.output_type;
      if (t.name == "token_embd.weight" && options.token_embedding_type) to = *options.token_embedding_type;
      p.to = row_compatible(to, t.dims[0], p.fallback);
    }
    p.converted = p.to != p.from;
    if (p.converted) {
      const TensorTypeInfo* info = tensor_type_info(static_cast<uint32_t>(t.type));
      if (info == nullptr || !info->computable)
        throw Error("quantize: tensor '" + t.name + "' is " + tensor_type_name(static_cast<uint32_t>(t.type)) +
                    ", which onellm cannot read");
      if (!is_float_type(t.type) && !options.allow_requantize)
        throw Error("quantize: tensor '" + t.name + "' is already quantized (" +
                    tensor_type_name(static_cast<uint32_t>(t.type)) + "); converting it to " +
                    tensor_type_name(static_cast<uint32_t>(p.to)) +
                    " rounds twice. Start from the F16/BF16/F32 model, or pass --allow-requantize");
    }
    plan.push_back(std::move(p));
  }
  return plan;
}

QuantizeReport quantize_gguf(const GgufFile& in, const std::string& out_path, const QuantizeOptions& options,
                             ThreadPool* pool, const std::function<void(uint64_t, uint64_t)>& progress) {
  std::error_code ec;  // the same file by another name (./m.gguf, a link) counts too
  if (out_path == in.path() || std::filesystem::equivalent(out_path, in.path(), ec))
    throw Error("quantize: the output would overwrite the input " + out_path);
  QuantizeReport report;
  report.plan = plan_quantization(in, options);
  const QuantizeRecipe& recipe = quantize_recipe(options.recipe);

  GgufWriter w;
  w.alignment = in.alignment();
  w.produced_block_bytes = options.block_bytes;
  for (const std::string& key : in.keys()) {
    if (key == "general.alignment") continue;  // the writer adds it from w.alignment
    w.set(key, *in.find(key));
  }
  w.set("general.file_type", GgufValue::of_u32(static_cast<uint32_t>(recipe.file_type)));
  if (!is_float_type(recipe.base)) w.set("general.quantization_version", GgufValue::of_u32(2));

  uint64_t total = 0;
  for (const GgufTensor& t : in.tensors()) total += t.n_bytes;
  uint64_t done = 0;  // input bytes read, for progress
  for (size_t i = 0; i < report.plan.size(); ++i) {
    const GgufTensor& t = in.tensors()[i];
    const TensorPlan& p = report.plan[i];
    report.in_bytes += t.n_bytes;
    const size_t in_row = tensor_row_bytes(t.type, t.dims[0]), out_row = tensor_row_bytes(p.to, t.dims[0]);
    report.out_bytes += out_row * static_cast<size_t>(t.n_elements() / t.dims[0]);
    const int64_t cols = t.dims[0];
    const auto produce = [&in, &t, &p, &done, &progress, pool, in_row, out_row, cols, total](int64_t first, int64_t n,
                                                                                          uint8_t* out) {
      const uint8_t* src = t.data + static_cast<size_t>(first) * in_row;
      if (!p.converted) {
        std::copy_n(src, static_cast<size_t>(n) * in_row, out);
      } else {
        // Row by row through F32; rows are independent, so the bytes do not
        // depend on how the threads split them.
        const auto convert = [&](int64_t r0, int64_t r1) {
          std::vector<float> row(static_cast<size_t>(cols));
          for (int64_t r = r0; r < r1; ++r) {
            dequantize_row_fast(t.type, src + static_cast<size_t>(r) * in_row, row.data(), cols);
            quantize_row_fast(p.to, row.data(), out + static_cast<size_t>(r) * out_row, cols);
          }
        };
        if (pool != nullptr) pool->parallel_for(n, convert);
        else convert(0, n);
      }
      in.release(src, static_cast<size_t>(n) * in_row);  // read once: keep resident memory at one block
      done += static_cast<uint64_t>(n) * in_row;
      if (progress) progress(done, total);
    };
    w.add_tensor_rows(t.name, p.to, t.dims, produce);
  }
  w.write(out_path);
  return report;
}

}  // namespace onellm
