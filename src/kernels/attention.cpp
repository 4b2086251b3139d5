// Attention of one query head over the rows of a KV cache. The fast path is
// an online softmax (flash-attention's recurrence, on CPU): keys are scored a
// block at a time and the running maximum rescales what has been summed, so
// every K and V row is read once and no score matrix is materialized.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "base/error.h"
#include "kernels/fast_kernels.h"
#include "kernels/kernels.h"

namespace onellm {
namespace {

constexpr int64_t kKeyBlock = 32;

void check_rows(const KvRows& rows, int64_t head_dim, const char* what) {
  if (rows.bf16_tiles)
    throw Error(std::string("attention: ") + what + " rows in the AMX tile layout are read by the grouped " +
                "attention at the amx level only");
  if (rows.type != TensorType::F32 && rows.type != TensorType::F16 && rows.type != TensorType::Q8_0)
    throw Error(std::string("attention: ") + what + " rows of type " + tensor_type_info(rows.type).name +
                " are not supported (F32, F16, Q8_0)");
  if (rows.type == TensorType::Q8_0 && head_dim % 32 != 0)
    throw Error("attention: Q8_0 KV rows need a head size that is a multiple of 32, got " + std::to_string(head_dim));
}

// The online-softmax loop; Dot(j) scores key j, Axpy(p, j, out) adds p * v_j.
template <typename Dot, typename Axpy>
void attend_online(const Dot& dot, const Axpy& axpy, int64_t n_keys, int64_t head_dim, float scale, float* out,
                   float* probs) {
  std::fill_n(out, head_dim, 0.0f);
  float running_max = -std::numeric_limits<float>::infinity(), total = 0.0f;
  float scores[kKeyBlock];
  for (int64_t j0 = 0; j0 < n_keys; j0 += kKeyBlock) {
    const int64_t nb = std::min(kKeyBlock, n_keys - j0);
    float block_max = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < nb; ++i) {
      scores[i] = scale * dot(j0 + i);
      block_max = std::max(block_max, scores[i]);
    }
    if (block_max > running_max) {
      // exp(-inf) = 0 on the first block: nothing summed yet.
      const float rescale = std::exp(running_max - block_max);
      if (total > 0.0f)
        for (int64_t d = 0; d < head_dim; ++d) out[d] *= rescale;
      total *= rescale;
      running_max = block_max;
    }
    for (int64_t i = 0; i < nb; ++i) {
      const float p = std::exp(scores[i] - running_max);
      total += p;
      axpy(p, j0 + i, out);
      if (probs != nullptr) probs[j0 + i] = scores[i];
    }
  }
  const float inv = total > 0.0f ? 1.0f / total : 0.0f;
  for (int64_t d = 0; d < head_dim; ++d) out[d] *= inv;
  if (probs != nullptr)
    for (int64_t j = 0; j < n_keys; ++j) probs[j] = std::exp(probs[j] - running_max) * inv;
}

// One KV row as floats: an aligned F32 row in place, any other row (a
// misaligned F32 one too: the kernels take float pointers) converted into buf.
const float* row_as_f32(TensorType type, const uint8_t* row, int64_t head_dim, std::vector<float>& buf) {
  if (type == TensorType::F32 && reinterpret_cast<uintptr_t>(row) % alignof(float) == 0)
    return reinterpret_cast<const float*>(row);
  buf.resize(static_cast<size_t>(head_dim));
  dequantize_row(type, row, buf.data(), head_dim);
  return buf.data();
}

}  // namespace

bool kv_tiles_supported(int64_t head_dim) {
  return cpu_level() == CpuLevel::kAmx && head_dim > 0 && head_dim % 32 == 0 && head_dim <= fast::kAmxMaxHeadDim;
}

size_t kv_tile_bytes(int64_t n_keys, int64_t head_dim) {
  return static_cast<size_t>((n_keys + kKvTileKeys - 1) / kKvTileKeys * 128 * head_dim);
}

void attend_at(CpuLevel level, const float* q, KvRows k, KvRows v, int64_t n_keys, int64_t head_dim, float scale,
               float* out, float* probs) {
  check_rows(k, head_dim, "key");
  check_rows(v, head_dim, "value");
  const fast::Kernels& kt = fast::kernels_for(level);
  std::vector<float> copy;  // a misaligned F32 row
  auto dot = [&](int64_t j) {
    const uint8_t* row = k.data + j * k.stride;
    switch (k.type) {
      case TensorType::F16: return kt.dot_f16(q, row, head_dim);
      case TensorType::Q8_0: return kt.dot_q8_0(q, row, head_dim);
      default: return kt.dot_f32(q, row_as_f32(k.type, row, head_dim, copy), head_dim);
    }
  };
  auto axpy = [&](float p, int64_t j, float* y) {
    const uint8_t* row = v.data + j * v.stride;
    switch (v.type) {
      case TensorType::F16: kt.axpy_f16(p, row, y, head_dim); break;
      case TensorType::Q8_0: kt.axpy_q8_0(p, row, y, head_dim); break;
      default: kt.axpy_f32(p, row_as_f32(v.type, row, head_dim, copy), y, head_dim);
    }
  };
  attend_online(dot, axpy, n_keys, head_dim, scale, out, probs);
}

void attend(const float* q, KvRows k, KvRows v, int64_t n_keys, int64_t head_dim, float scale, float* out,
            float* probs) {
  attend_at(cpu_level(), q, k, v, n_keys, head_dim, scale, out, probs);
}

// Per key block: S^T (keys x queries) = K . Q^T, an online softmax per
// query column, then O += P . V. The queries are stored transposed and
// padded to query_pad (8 or 16) columns so the score product runs full vectors.
namespace {

// attend_group_at, or with max_out / sum_out its unnormalized part.
// key_limits (may be null): query i reads keys j < key_limits[i] only.
void attend_group_impl(CpuLevel level, const float* q, int64_t n_queries, KvRows k, KvRows v, int64_t n_keys,
                       const int64_t* key_limits, int64_t head_dim, float scale, float* out, float* max_out,
                       float* sum_out) {
  if (k.bf16_tiles || v.bf16_tiles) {
    if (!k.bf16_tiles || !v.bf16_tiles || level != CpuLevel::kAmx)
      throw Error(std::string("attention: keys and values in the AMX tile layout need the amx level, not ") +
                  cpu_level_name(level));
  } else {
    check_rows(k, head_dim, "key");
    check_rows(v, head_dim, "value");
  }
  constexpr int64_t kMaxQueries = 16;
  if (n_queries > kMaxQueries) {
    attend_group_impl(level, q, kMaxQueries, k, v, n_keys, key_limits, head_dim, scale, out, max_out, sum_out);
    const bool partial = max_out != nullptr;
    return attend_group_impl(level, q + kMaxQueries * head_dim, n_queries - kMaxQueries, k, v, n_keys,
                             key_limits != nullptr ? key_limits + kMaxQueries : nullptr, head_dim, scale,
                             out + kMaxQueries * head_dim, partial ? max_out + kMaxQueries : nullptr,
                             partial ? sum_out + kMaxQueries : nullptr);
  }
  const fast::Kernels& kernels = fast::kernels_for(level);
  if (kernels.attend_heads != nullptr && k.type == v.type)
    return kernels.attend_heads(q, n_queries, k, v, n_keys, key_limits, head_dim, scale, out, max_out, sum_out);
  if (key_limits != nullptr) {  // the generic path: each run of equal limits alone
    for (int64_t i = 0, run = 1; i < n_queries; i += run) {
      for (run = 1; i + run < n_queries && key_limits[i + run] == key_limits[i]; ++run) {
      }
      const bool partial = max_out != nullptr;
      attend_group_impl(level, q + i * head_dim, run, k, v, std::min(key_limits[i], n_keys), nullptr, head_dim, scale,
                        out + i * head_dim, partial ? max_out + i : nullptr, partial ? sum_out + i : nullptr);
    }
    return;
  }
  // The score product's columns: 8 or 16 (the accumulate kernels' widths).
  const int64_t query_pad = n_queries <= 8 ? 8 : kMaxQueries;
  const fast::AccumulateFn accumulate = kernels.accumulate_f32;
  thread_local std::vector<float> q_t, scores, k_rows, v_rows;
  q_t.assign(static_cast<size_t>(head_dim * query_pad), 0.0f);
  for (int64_t i = 0; i < n_queries; ++i)
    for (int64_t d = 0; d < head_dim; ++d) q_t[static_cast<size_t>(d * query_pad + i)] = q[i * head_dim + d] * scale;
  scores.resize(static_cast<size_t>(kKeyBlock * query_pad));
  // F32 rows at a whole-float stride are read in place; others are
  // converted a block at a time.
  auto rows_f32 = [&](const KvRows& rows, int64_t j0, int64_t nb, std::vector<float>& buf, int64_t* ld) {
    if (rows.type == TensorType::F32 && rows.stride % sizeof(float) == 0 &&
        reinterpret_cast<uintptr_t>(rows.data) % alignof(float) == 0) {
      *ld = static_cast<int64_t>(rows.stride / sizeof(float));
      return reinterpret_cast<const float*>(rows.data + j0 * rows.stride);
    }
    buf.resize(static_cast<size_t>(kKeyBlock * head_dim));
    for (int64_t i = 0; i < nb; ++i)
      fast::dequantize_row_with(kernels, rows.type, rows.data + (j0 + i) * rows.stride, buf.data() + i * head_dim,
                                head_dim);
    *ld = head_dim;
    return static_cast<const float*>(buf.data());
  };
  std::fill_n(out, n_queries * head_dim, 0.0f);
  float running_max[kMaxQueries], total[kMaxQueries];
  std::fill_n(running_max, kMaxQueries, -std::numeric_limits<float>::infinity());
  std::fill_n(total, kMaxQueries, 0.0f);
  for (int64_t j0 = 0; j0 < n_keys; j0 += kKeyBlock) {
    const int64_t nb = std::min(kKeyBlock, n_keys - j0);
    int64_t ldk, ldv;
    const float* kb = rows_f32(k, j0, nb, k_rows, &ldk);
    std::fill(scores.begin(), scores.end(), 0.0f);
    accumulate(nb, query_pad, head_dim, kb, ldk, 1, q_t.data(), query_pad, scores.data(), query_pad);
    for (int64_t i = 0; i < n_queries; ++i) {
      float block_max = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < nb; ++j) block_max = std::max(block_max, scores[static_cast<size_t>(j * query_pad + i)]);
      if (block_max > running_max[i]) {
        const float rescale = std::exp(running_max[i] - block_max);
        if (total[i] > 0.0f)
          for (int64_t d = 0; d < head_dim; ++d) out[i * head_dim + d] *= rescale;
        total[i] *= rescale;
        running_max[i] = block_max;
      }
    }
    // Probabilities in place, one vector exp over the block (padding
    // columns -> exp(-inf) = 0), read by the value product column-wise.
    for (int64_t j = 0; j < nb; ++j) {
      float* row = scores.data() + j * query_pad;
      for (int64_t i = 0; i < n_queries; ++i) row[i] -= running_max[i];
      std::fill(row + n_queries, row + query_pad, -std::numeric_limits<float>::infinity());
    }
    kernels.exp_f32(scores.data(), nb * query_pad);
    for (int64_t j = 0; j < nb; ++j)
      for (int64_t i = 0; i < n_queries; ++i) total[i] += scores[static_cast<size_t>(j * query_pad + i)];
    const float* vb = rows_f32(v, j0, nb, v_rows, &ldv);
    accumulate(n_queries, head_dim, nb, scores.data(), 1, query_pad, vb, ldv, out, head_dim);
  }
  for (int64_t i = 0; i < n_queries; ++i) {
    if (max_out != nullptr) {
      max_out[i] = running_max[i], sum_out[i] = total[i];
      continue;
    }
    const float inv = total[i] > 0.0f ? 1.0f / total[i] : 0.0f;
    for (int64_t d = 0; d < head_dim; ++d) out[i * head_dim + d] *= inv;
  }
}

}  // namespace

void attend_group_at(CpuLevel level, const float* q, int64_t n_queries, KvRows k, KvRows v, int64_t n_keys,
                     int64_t head_dim, float scale, float* out) {
  attend_group_impl(level, q, n_queries, k, v, n_keys, nullptr, head_dim, scale, out, nullptr, nullptr);
}

void attend_group_causal_at(CpuLevel level, const float* q, int64_t n_queries, const int64_t* n_keys_of, KvRows k,
                            KvRows v, int64_t head_dim, float scale, float* out) {
  int64_t n_keys = 0;
  for (int64_t i = 0; i < n_queries; ++i) {
    if (n_keys_of[i] < 1) throw Error("attention: query " + std::to_string(i) + " of a causal group has no key");
    n_keys = std::max(n_keys, n_keys_of[i]);
  }
  attend_group_impl(level, q, n_queries, k, v, n_keys, n_keys_of, head_dim, scale, out, nullptr, nullptr);
}

void attend_group_causal(const float* q, int64_t n_queries, const int64_t* n_keys_of, KvRows k, KvRows v,
                         int64_t head_dim, float scale, float* out) {
  attend_group_causal_at(cpu_level(), q, n_queries, n_keys_of, k, v, head_dim, scale, out);
}

void attend_group(const float* q, int64_t n_queries, KvRows k, KvRows v, int64_t n_keys, int64_t head_dim,
                  float scale, float* out) {
  attend_group_at(cpu_level(), q, n_queries, k, v, n_keys, head_dim, scale, out);
}

void attend_group_partial_at(CpuLevel level, const float* q, int64_t n_queries, KvRows k, KvRows v, int64_t n_keys,
                             int64_t head_dim, float scale, float* out, float* max_out, float* sum_out) {
  attend_group_impl(level, q, n_queries, k, v, n_keys, nullptr, head_dim, scale, out, max_out, sum_out);
}

void attend_group_partial(const float* q, int64_t n_queries, KvRows k, KvRows v, int64_t n_keys, int64_t head_dim,
                          float scale, float* out, float* max_out, float* sum_out) {
  attend_group_partial_at(cpu_level(), q, n_queries, k, v, n_keys, head_dim, scale, out, max_out, sum_out);
}

void merge_attention(const float* parts, const float* maxes, const float* sums, int64_t n_parts, int64_t n_queries,
                     int64_t head_dim, float* out) {
  for (int64_t i = 0; i < n_queries; ++i) {
    float top = -std::numeric_limits<float>::infinity();
    for (int64_t p = 0; p < n_parts; ++p) top = std::max(top, maxes[p * n_queries + i]);
    float total = 0.0f;
    float* o = out + i * head_dim;
    std::fill_n(o, head_dim, 0.0f);
    if (top == -std::numeric_limits<float>::infinity()) continue;  // no keys at all
    for (int64_t p = 0; p < n_parts; ++p) {
      const float m = maxes[p * n_queries + i];
      if (m == -std::numeric_limits<float>::infinity()) continue;  // an empty part
      const float w = std::exp(m - top);
      total += w * sums[p * n_queries + i];
      const float* part = parts + (p * n_queries + i) * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) o[d] += w * part[d];
    }
    const float inv = total > 0.0f ? 1.0f / total : 0.0f;
    for (int64_t d = 0; d < head_dim; ++d) o[d] *= inv;
  }
}

void attend_exact(const float* q, KvRows k, KvRows v, int64_t n_keys, int64_t head_dim, float scale, float* out,
                  float* probs) {
  check_rows(k, head_dim, "key");
  check_rows(v, head_dim, "value");
  std::vector<float> scores(static_cast<size_t>(n_keys)), row;
  auto load = [&](const KvRows& rows, int64_t j) { return row_as_f32(rows.type, rows.data + j * rows.stride, head_dim, row); };
  for (int64_t j = 0; j < n_keys; ++j) {
    const float* kj = load(k, j);
    float s = 0.0f;
    for (int64_t d = 0; d < head_dim; ++d) s += q[d] * kj[d];
    scores[static_cast<size_t>(j)] = s * scale;
  }
  softmax_inplace(scores.data(), n_keys);
  std::fill_n(out, head_dim, 0.0f);
  for (int64_t j = 0; j < n_keys; ++j) {
    const float p = scores[static_cast<size_t>(j)];
    const float* vj = load(v, j);
    for (int64_t d = 0; d < head_dim; ++d) out[d] += p * vj[d];
  }
  if (probs != nullptr) std::copy(scores.begin(), scores.end(), probs);
}

}  // namespace onellm
