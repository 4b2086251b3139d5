// The AArch64 kernel level against the scalar level, without GoogleTest (no
// arm64 gtest is installable on the build machine): built with the cross
// compiler by scripts/arm-check.sh and run under qemu-user. It covers the
// ground of kernel_fast_matmul_test.cpp and kernel_attention_test.cpp for
// every NEON table ("neon"; "neon-dotprod" when the CPU reports dotprod;
// "neon-i8mm" when it reports i8mm too):
// every tile slot at odd row / block / token counts with unaligned weights
// and activations, bit-identical activation quantization, the attention and
// training vector kernels, attend_at and matmul_fast_at against the exact
// reference. Prints each failed comparison (the first 40) and exits 1.
//
// Usage: kernels_check [--expect-dotprod | --expect-no-dotprod] [--expect-i8mm | --expect-no-i8mm]
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/fast_kernels.h"
#include "kernels/kernels.h"
#include "kernels/quant_blocks.h"
#include "support/kernel_reference.h"

namespace onellm {
namespace {

int g_checks = 0, g_failures = 0;

std::string format(const char* fmt, ...) {
  char buf[512];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  return buf;
}

bool check(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok && ++g_failures <= 40) std::printf("FAIL %s\n", what.c_str());
  return ok;
}

// |got - want| <= tol; NaN fails.
bool check_near(double got, double want, double tol, const std::string& what) {
  return check(std::fabs(got - want) <= tol,
               format("%s: got %.9g, want %.9g (tolerance %.3g)", what.c_str(), got, want, tol));
}

using fast::Kernels;

std::vector<const Kernels*> neon_tables() {
  std::vector<const Kernels*> tables = {fast::kernels_neon_plain()};
  if (fast::kernels_neon_dotprod() != nullptr) tables.push_back(fast::kernels_neon_dotprod());
  if (fast::kernels_neon_i8mm() != nullptr) tables.push_back(fast::kernels_neon_i8mm());
  return tables;
}

std::vector<float> normal_values(size_t n, uint32_t seed, float spread = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, spread);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = normal(rng) * (i % 7 == 0 ? 4.0f : 1.0f);
  return v;
}

// ---- activation quantization: the same bits as the scalar level

void check_quantize(const Kernels& k) {
  std::vector<float> x = normal_values(1024, 5, 3.0f);
  for (int i = 64; i < 96; ++i) x[i] = 0.0f;  // an all-zero block
  // d = 1 exactly, so x * id lands on .5 ties: rounding must be half-to-even.
  for (int i = 96; i < 128; ++i) x[i] = static_cast<float>(i - 112) + 0.5f;
  x[127] = 127.0f;
  const Kernels& ref = *fast::kernels_scalar();
  std::vector<fast::ActQ8> q8_ref(32), q8(32);
  std::vector<fast::ActQ8K> q8k_ref(4), q8k(4);
  ref.quantize_q8(x.data(), q8_ref.data(), 32);
  ref.quantize_q8k(x.data(), q8k_ref.data(), 4);
  k.quantize_q8(x.data(), q8.data(), 32);
  k.quantize_q8k(x.data(), q8k.data(), 4);
  for (int b = 0; b < 32; ++b)
    check(std::memcmp(&q8[b], &q8_ref[b], sizeof(fast::ActQ8)) == 0, format("%s quantize_q8 block %d bits", k.name, b));
  for (int b = 0; b < 4; ++b)
    check(std::memcmp(&q8k[b], &q8k_ref[b], sizeof(fast::ActQ8K)) == 0,
          format("%s quantize_q8k block %d bits", k.name, b));
  check(q8_ref[3].qs[0] == -16 && q8_ref[3].qs[1] == -14, "scalar reference rounds ties to even");
}

// ---- every tile slot, called directly

struct SlotInfo {
  int slot;
  TensorType type;
};
constexpr SlotInfo kSlots[] = {
    {fast::kSlotF32, TensorType::F32},   {fast::kSlotF16, TensorType::F16},   {fast::kSlotBF16, TensorType::BF16},
    {fast::kSlotQ4_0, TensorType::Q4_0}, {fast::kSlotQ4_1, TensorType::Q4_1}, {fast::kSlotQ5_0, TensorType::Q5_0},
    {fast::kSlotQ5_1, TensorType::Q5_1}, {fast::kSlotQ8_0, TensorType::Q8_0}, {fast::kSlotQ4_K, TensorType::Q4_K},
    {fast::kSlotQ5_K, TensorType::Q5_K}, {fast::kSlotQ6_K, TensorType::Q6_K}, {fast::kSlotIQ4_NL, TensorType::IQ4_NL},
    {fast::kSlotIQ4_XS, TensorType::IQ4_XS}, {fast::kSlotQ2_K, TensorType::Q2_K},  {fast::kSlotQ3_K, TensorType::Q3_K},
};

// One tile call's inputs: weights at odd addresses with a padded row
// stride, activations (F32 at a float offset, or quantized blocks) with a
// padded stride, and the dequantized values for the magnitude of each dot.
struct TileProblem {
  int64_t rows, n_tok, n_blocks, elems;
  size_t w_stride, a_stride;
  std::vector<uint8_t> w_bytes, a_bytes;
  std::vector<float> w_deq, a_deq;
  const uint8_t *w, *a;

  TileProblem(const SlotInfo& s, int64_t r, int64_t nt, int64_t nb, uint32_t seed) : rows(r), n_tok(nt), n_blocks(nb) {
    const int64_t block = tensor_type_info(s.type).block_elems;
    elems = nb * block;
    const size_t row_bytes = tensor_row_bytes(s.type, elems);
    w_stride = row_bytes + 3;
    w_bytes.assign(1 + w_stride * static_cast<size_t>(r), 0);
    w_deq.resize(static_cast<size_t>(r * elems));
    const std::vector<float> wf = normal_values(static_cast<size_t>(r * elems), seed);
    for (int64_t i = 0; i < r; ++i) {
      uint8_t* dst = w_bytes.data() + 1 + i * w_stride;
      quantize_row(s.type, wf.data() + i * elems, dst, elems);
      dequantize_row(s.type, dst, w_deq.data() + i * elems, elems);
    }
    w = w_bytes.data() + 1;
    const std::vector<float> x = normal_values(static_cast<size_t>(nt * elems), seed + 1000);
    a_deq.resize(x.size());
    if (block == 1) {  // F32 activations one float past an aligned address, stride padded by a float
      a_stride = static_cast<size_t>(elems + 1) * 4;
      a_bytes.assign(4 + a_stride * static_cast<size_t>(nt), 0);
      for (int64_t t = 0; t < nt; ++t) std::memcpy(a_bytes.data() + 4 + t * a_stride, x.data() + t * elems, elems * 4);
      a_deq = x;
      a = a_bytes.data() + 4;
      return;
    }
    const Kernels& ref = *fast::kernels_scalar();
    const bool k_quant = test::activation_block(s.type) == 256;
    const int64_t act_blocks = elems / (k_quant ? 256 : 32);
    const size_t act_size = k_quant ? sizeof(fast::ActQ8K) : sizeof(fast::ActQ8);
    a_stride = static_cast<size_t>(act_blocks + 1) * act_size;  // one spare block per row
    a_bytes.assign(a_stride * static_cast<size_t>(nt), 0);
    for (int64_t t = 0; t < nt; ++t) {
      uint8_t* at = a_bytes.data() + t * a_stride;
      const float* xt = x.data() + t * elems;
      if (k_quant) {
        auto* q = reinterpret_cast<fast::ActQ8K*>(at);
        ref.quantize_q8k(xt, q, act_blocks);
        for (int64_t i = 0; i < elems; ++i) a_deq[t * elems + i] = q[i / 256].d * q[i / 256].qs[i % 256];
      } else {
        auto* q = reinterpret_cast<fast::ActQ8*>(at);
        ref.quantize_q8(xt, q, act_blocks);
        for (int64_t i = 0; i < elems; ++i) a_deq[t * elems + i] = q[i / 32].d * q[i / 32].qs[i % 32];
      }
    }
    a = a_bytes.data();
  }

  // y[t * y_stride + r] for t < n_tok, r < rows; the rest stays NaN.
  std::vector<float> run(fast::TileFn tile, int64_t y_stride) const {
    std::vector<float> y(static_cast<size_t>(n_tok * y_stride), NAN);
    tile(w, w_stride, rows, a, a_stride, n_tok, n_blocks, y.data(), y_stride);
    return y;
  }
};

void check_tiles(const Kernels& k) {
  const Kernels& ref = *fast::kernels_scalar();
  uint32_t seed = 1;
  for (const SlotInfo& s : kSlots) {
    const int64_t block = tensor_type_info(s.type).block_elems;
    std::vector<int64_t> block_counts;
    if (block == 1)
      block_counts = {1, 3, 4, 7, 8, 16, 17, 33, 203};
    else if (block == 32)
      block_counts = {1, 2, 3, 7, 33};
    else
      block_counts = {1, 2, 3};
    const char* type = tensor_type_info(s.type).name;
    for (int64_t nb : block_counts)
      for (int64_t rows : {1, 2, 3, 17})
        for (int64_t n_tok = 1; n_tok <= 9; ++n_tok) {
          const TileProblem p(s, rows, n_tok, nb, seed++);
          const int64_t y_stride = rows + 2;
          const std::vector<float> want = p.run(ref.tile[s.slot], y_stride), got = p.run(k.tile[s.slot], y_stride);
          int bad = 0;
          for (int64_t t = 0; t < n_tok; ++t)
            for (int64_t r = 0; r < y_stride; ++r) {
              const size_t i = static_cast<size_t>(t * y_stride + r);
              const std::string what =
                  format("%s tile %s, %lld blocks, %lld rows, %lld tokens: row %lld token %lld", k.name, type,
                         (long long)nb, (long long)rows, (long long)n_tok, (long long)r, (long long)t);
              if (r >= rows) {
                bad += !check(std::isnan(got[i]), what + " (padding written)");
                continue;
              }
              double magnitude = 0;
              for (int64_t c = 0; c < p.elems; ++c)
                magnitude += std::fabs(double(p.w_deq[r * p.elems + c]) * p.a_deq[t * p.elems + c]);
              bad += !check_near(got[i], want[i], 1e-5 * magnitude + 1e-6, what);
            }
          if (bad > 0) return;  // one failing shape per slot is enough to read
        }
  }
}

// ---- vector kernels for attention (F32, F16 and Q8_0 rows) and training

// Kernels::dequantize (through dequantize_row_with) has dequantize_row's
// bits for every computable type: rows of 1 to 7 blocks from an address off
// the alignment, values over several magnitudes.
void check_dequantize(const Kernels& k) {
  check(k.dequantize != nullptr, format("%s has a dequantize routine", k.name));
  const std::vector<float> x = normal_values(7 * 256, 31);
  for (TensorType type : test::kNonF32Types)
    for (int64_t blocks : {1, 2, 7}) {
      const int64_t n = std::max<int64_t>(tensor_type_info(type).block_elems, 16) * blocks;
      std::vector<float> scaled(x.begin(), x.begin() + n);
      for (int64_t i = 0; i < n; ++i)
        scaled[static_cast<size_t>(i)] *= std::ldexp(1.0f, static_cast<int>(i / 64 % 5) - 2);
      std::vector<uint8_t> stored(1 + tensor_row_bytes(type, n));
      quantize_row(type, scaled.data(), stored.data() + 1, n);
      std::vector<float> want(static_cast<size_t>(n)), got(static_cast<size_t>(n), -7.0f);
      dequantize_row(type, stored.data() + 1, want.data(), n);
      fast::dequantize_row_with(k, type, stored.data() + 1, got.data(), n);
      check(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)) == 0,
            format("%s dequantize %s n=%lld bits", k.name, tensor_type_name(static_cast<uint32_t>(type)).c_str(),
                   static_cast<long long>(n)));
    }
}

void check_vector_ops(const Kernels& k) {
  const std::vector<float> a = normal_values(1 + 224, 9), b = normal_values(224, 10);
  for (int64_t n : {0, 1, 7, 8, 16, 17, 203}) {
    double want = 0, magnitude = 0;
    for (int64_t i = 0; i < n; ++i) {
      want += double(a[1 + i]) * b[i];
      magnitude += std::fabs(double(a[1 + i]) * b[i]);
    }
    check_near(k.dot_f32(a.data() + 1, b.data(), n), want, 1e-6 * magnitude + 1e-6,
               format("%s dot_f32 n=%lld", k.name, (long long)n));

    // F16 rows at an odd address
    std::vector<uint8_t> f16(1 + 2 * 224);
    std::vector<float> f16_values(224);
    for (int64_t i = 0; i < 224; ++i) {
      const uint16_t h = f32_to_fp16(b[i]);
      f16[1 + 2 * i] = static_cast<uint8_t>(h & 0xFF);
      f16[2 + 2 * i] = static_cast<uint8_t>(h >> 8);
      f16_values[i] = fp16_to_f32(h);
    }
    double want16 = 0;
    for (int64_t i = 0; i < n; ++i) want16 += double(a[1 + i]) * f16_values[i];
    check_near(k.dot_f16(a.data() + 1, f16.data() + 1, n), want16, 1e-6 * magnitude + 1e-6,
               format("%s dot_f16 n=%lld", k.name, (long long)n));

    std::vector<float> y(224, 1.0f), y16(224, 1.0f);
    k.axpy_f32(0.5f, a.data() + 1, y.data(), n);
    k.axpy_f16(-0.25f, f16.data() + 1, y16.data(), n);
    for (int64_t i = 0; i < 224; ++i) {
      const double w32 = i < n ? 1.0 + 0.5 * a[1 + i] : 1.0, w16 = i < n ? 1.0 - 0.25 * f16_values[i] : 1.0;
      check_near(y[i], w32, 1e-6 * (1 + std::fabs(w32)),
                 format("%s axpy_f32 n=%lld i=%lld", k.name, (long long)n, (long long)i));
      check_near(y16[i], w16, 1e-6 * (1 + std::fabs(w16)),
                 format("%s axpy_f16 n=%lld i=%lld", k.name, (long long)n, (long long)i));
    }
  }
  // f32 -> f16 rows: the bits of f32_to_fp16 (halfway cases, subnormals,
  // overflow to infinity, NaN payloads, then random values).
  std::vector<float> wide = {0.0f, -0.0f, 65504.0f, 65520.0f, INFINITY, -INFINITY, 2.9802322e-8f, 1e-10f,
                             1.00048828125f, 1.00146484375f, -6.097555e-5f, 2049.0f, 2051.0f};
  uint32_t nan_bits = 0xFFA12345u;
  float nan;
  std::memcpy(&nan, &nan_bits, 4);
  wide.push_back(nan);
  for (float v : b) wide.push_back(v * 1000.0f);
  std::vector<uint8_t> halves(2 * wide.size());
  k.f32_to_f16(wide.data(), halves.data(), static_cast<int64_t>(wide.size()));
  for (size_t i = 0; i < wide.size(); ++i) {
    const uint16_t h = f32_to_fp16(wide[i]);
    check(halves[2 * i] == (h & 0xFF) && halves[2 * i + 1] == (h >> 8),
          format("%s f32_to_f16 x[%zu] = %g", k.name, i, static_cast<double>(wide[i])));
  }
  for (int64_t n : {0, 32, 64, 96, 224}) {
    std::vector<uint8_t> row(1 + tensor_row_bytes(TensorType::Q8_0, 224));
    std::vector<float> values(224);
    quantize_row(TensorType::Q8_0, b.data(), row.data() + 1, 224);
    dequantize_row(TensorType::Q8_0, row.data() + 1, values.data(), 224);
    double want = 0, magnitude = 0;
    for (int64_t i = 0; i < n; ++i) {
      want += double(a[1 + i]) * values[i];
      magnitude += std::fabs(double(a[1 + i]) * values[i]);
    }
    check_near(k.dot_q8_0(a.data() + 1, row.data() + 1, n), want, 1e-6 * magnitude + 1e-6,
               format("%s dot_q8_0 n=%lld", k.name, (long long)n));
    std::vector<float> y(224, 1.0f);
    k.axpy_q8_0(2.0f, row.data() + 1, y.data(), n);
    for (int64_t i = 0; i < 224; ++i) {
      const double w = i < n ? 1.0 + 2.0 * values[i] : 1.0;
      check_near(y[i], w, 1e-6 * (1 + std::fabs(w)),
                 format("%s axpy_q8_0 n=%lld i=%lld", k.name, (long long)n, (long long)i));
    }
  }
}

// The vector exp and SwiGLU against libm in double (test::ExpSwigluCase).
void check_exp_swiglu(const Kernels& k) {
  std::mt19937 rng(11);
  for (int64_t n : test::kExpLengths) {
    const test::ExpSwigluCase c(n, rng);
    std::vector<float> e(c.x), out(c.x.size());
    k.exp_f32(e.data() + 1, n);
    k.swiglu_f32(c.gate.data() + 1, c.up.data() + 1, out.data() + 1, n);
    for (size_t i = 1; i <= static_cast<size_t>(n); ++i) {
      check_near(e[i], c.exp_x[i], c.exp_tolerance(i), format("%s exp(%g)", k.name, double(c.x[i])));
      check_near(out[i], c.swiglu[i], c.swiglu_tolerance(i), format("%s swiglu(%g)", k.name, double(c.gate[i])));
    }
  }
}

// C += A B, A read as itself or transposed; against double precision.
void check_accumulate(const Kernels& k) {
  std::mt19937 rng(11);
  for (test::AccumulateShape sh : test::kAccumulateShapes)
    for (bool transposed : {false, true}) {
      const test::AccumulateProblem p(sh.m, sh.n, sh.k, transposed, rng);
      std::vector<float> c = p.c0;
      k.accumulate_f32(p.m, p.n, p.k, p.a.data(), p.a_si, p.a_sk, p.b.data(), p.ldb, c.data(), p.ldc);
      int bad = 0;
      for (int64_t i = 0; i < p.m && bad == 0; ++i)
        for (int64_t j = 0; j < p.ldc; ++j) {
          const size_t at = static_cast<size_t>(i * p.ldc + j);
          const std::string what =
              format("%s accumulate_f32 m%lld n%lld k%lld%s element %lld,%lld", k.name, (long long)p.m, (long long)p.n,
                     (long long)p.k, transposed ? " (A transposed)" : "", (long long)i, (long long)j);
          if (j >= p.n)
            bad += !check(c[at] == p.c0[at], what + " (padding column written)");
          else
            bad += !check_near(c[at], p.want(i, j), 1e-5 * (p.k + 1), what);
        }
    }
}

// The active level through the public entry point: with and without threads
// the result is bit-identical.
void check_accumulate_threads() {
  std::mt19937 rng(12);
  std::uniform_real_distribution<float> u(-1, 1);
  ThreadPool pool(3);
  const int64_t m = 97, n = 130, k = 257;
  std::vector<float> a(static_cast<size_t>(m * k)), b(static_cast<size_t>(k * n)), c1(static_cast<size_t>(m * n));
  for (float& v : a) v = u(rng);
  for (float& v : b) v = u(rng);
  for (float& v : c1) v = u(rng);
  std::vector<float> c2 = c1;
  matmul_accumulate_at(CpuLevel::kNeon, m, n, k, a.data(), k, 1, b.data(), n, c1.data(), n, nullptr);
  matmul_accumulate_at(CpuLevel::kNeon, m, n, k, a.data(), k, 1, b.data(), n, c2.data(), n, &pool);
  check(std::memcmp(c1.data(), c2.data(), c1.size() * sizeof(float)) == 0,
        "matmul_accumulate_at(neon): threads change the result");
}

// ---- attention: online softmax at the NEON level vs the two-pass reference

void check_attention() {
  test::for_each_attention_case([](const test::AttentionCase& c) {
    const int64_t dim = c.dim, n = c.n;
    const std::vector<float> q = normal_values(static_cast<size_t>(dim), 5);
    std::vector<double> want, want_p;
    test::attention_reference(q.data(), c.k.values.data(), c.v.values.data(), n, dim, c.scale, want, want_p);
    std::vector<float> out(static_cast<size_t>(dim)), probs(static_cast<size_t>(n));
    std::vector<float> exact_out(out.size()), exact_probs(probs.size());
    attend_at(CpuLevel::kNeon, q.data(), c.k.view, c.v.view, n, dim, c.scale, out.data(), probs.data());
    attend_exact(q.data(), c.k.view, c.v.view, n, dim, c.scale, exact_out.data(), exact_probs.data());
    const std::string what =
        format("attend_at(neon) %s dim %lld keys %lld", tensor_type_info(c.type).name, (long long)dim, (long long)n);
    int bad = 0;
    for (int64_t d = 0; d < dim && bad == 0; ++d) {
      bad += !check_near(out[d], want[d], 2e-5, what + format(" out[%lld]", (long long)d));
      bad += !check_near(out[d], exact_out[d], 4e-5, what + format(" out[%lld] vs attend_exact", (long long)d));
    }
    double sum = 0;
    for (int64_t j = 0; j < n && bad == 0; ++j) {
      bad += !check_near(probs[j], want_p[j], 2e-6, what + format(" probs[%lld]", (long long)j));
      bad += !check_near(probs[j], exact_probs[j], 4e-6, what + format(" probs[%lld] vs attend_exact", (long long)j));
      sum += probs[j];
    }
    if (bad == 0) check_near(sum, 1.0, 1e-5, what + " probabilities sum");
  });
}

// ---- grouped queries (attend_group) at the NEON level: against the reference
// per query, as parts over key ranges merged (decode's split of the keys),
// and with a key count per query (attend_group_causal: prefill's rows)

void check_attention_groups() {
  test::for_each_attention_case([](const test::AttentionCase& c) {
    const int64_t dim = c.dim, n = c.n;
    for (int64_t n_q : {1, 7, 11, 18}) {  // 1-4 vectors of queries, and the split past 16
      const std::vector<float> q = normal_values(static_cast<size_t>(n_q * dim), 6);
      std::vector<float> whole(q.size()), merged(q.size());
      attend_group_at(CpuLevel::kNeon, q.data(), n_q, c.k.view, c.v.view, n, dim, c.scale, whole.data());
      const int64_t half = n / 2;
      std::vector<float> parts(2 * q.size()), maxes(static_cast<size_t>(2 * n_q)), sums(maxes.size());
      KvRows k2 = c.k.view, v2 = c.v.view;
      k2.data += half * k2.stride;
      v2.data += half * v2.stride;
      attend_group_partial_at(CpuLevel::kNeon, q.data(), n_q, c.k.view, c.v.view, half, dim, c.scale, parts.data(),
                              maxes.data(), sums.data());
      attend_group_partial_at(CpuLevel::kNeon, q.data(), n_q, k2, v2, n - half, dim, c.scale,
                              parts.data() + q.size(), maxes.data() + n_q, sums.data() + n_q);
      merge_attention(parts.data(), maxes.data(), sums.data(), 2, n_q, dim, merged.data());
      // Prefill's rows in one call (3 heads per row, the last row at n keys).
      std::vector<int64_t> limits(static_cast<size_t>(n_q));
      for (int64_t i = 0; i < n_q; ++i) limits[i] = std::max<int64_t>(1, n - (n_q - 1 - i) / 3);
      std::vector<float> causal(q.size());
      attend_group_causal_at(CpuLevel::kNeon, q.data(), n_q, limits.data(), c.k.view, c.v.view, dim, c.scale,
                             causal.data());
      const std::string what = format("attend_group_at(neon) %s dim %lld keys %lld queries %lld",
                                      tensor_type_info(c.type).name, (long long)dim, (long long)n, (long long)n_q);
      int bad = 0;
      for (int64_t i = 0; i < n_q && bad == 0; ++i) {
        std::vector<double> want, want_p;
        test::attention_reference(q.data() + i * dim, c.k.values.data(), c.v.values.data(), n, dim, c.scale, want,
                                  want_p);
        for (int64_t d = 0; d < dim && bad == 0; ++d) {
          bad += !check_near(whole[i * dim + d], want[d], 2e-5, what + format(" out[%lld]", (long long)(i * dim + d)));
          bad += !check_near(merged[i * dim + d], want[d], 2e-5, what + " merged halves");
        }
        test::attention_reference(q.data() + i * dim, c.k.values.data(), c.v.values.data(), limits[i], dim, c.scale,
                                  want, want_p);
        for (int64_t d = 0; d < dim && bad == 0; ++d)
          bad += !check_near(causal[i * dim + d], want[d], 2e-5,
                             what + format(" causal, query %lld of %lld keys", (long long)i, (long long)limits[i]));
      }
    }
  });
}

// ---- matmul_fast_at(kNeon) vs the exact matmul and the scalar level

void check_matmul(TensorType type, int64_t rows, int64_t cols, int64_t n_tokens, uint32_t seed, ThreadPool* pool) {
  const size_t row_bytes = tensor_row_bytes(type, cols);
  std::vector<uint8_t> storage(1 + row_bytes * rows);  // weights at an odd address
  std::vector<float> w_deq(static_cast<size_t>(rows * cols));
  const std::vector<float> wf = normal_values(w_deq.size(), seed);
  for (int64_t r = 0; r < rows; ++r) {
    quantize_row(type, wf.data() + r * cols, storage.data() + 1 + r * row_bytes, cols);
    dequantize_row(type, storage.data() + 1 + r * row_bytes, w_deq.data() + r * cols, cols);
  }
  const MatrixView w{type, storage.data() + 1, rows, cols};
  const std::vector<float> x_storage = normal_values(static_cast<size_t>(1 + n_tokens * cols), seed + 7);
  const float* x = x_storage.data() + 1;
  std::vector<float> exact(static_cast<size_t>(n_tokens * rows)), scalar(exact.size()), neon(exact.size(), NAN);
  matmul(w, x, n_tokens, exact.data(), pool);
  matmul_fast_at(CpuLevel::kScalar, w, x, n_tokens, scalar.data(), pool);
  matmul_fast_at(CpuLevel::kNeon, w, x, n_tokens, neon.data(), pool);
  const int64_t blk = test::activation_block(type);
  const bool quantized = test::quantized_activations(type);
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      double magnitude;
      const double bound =
          test::activation_quantization_bound(w_deq.data() + r * cols, x + t * cols, cols, blk, quantized, &magnitude);
      const size_t i = static_cast<size_t>(t * rows + r);
      const std::string what =
          format("matmul_fast_at(neon) %s %lldx%lld, %lld tokens: row %lld token %lld", tensor_type_info(type).name,
                 (long long)rows, (long long)cols, (long long)n_tokens, (long long)r, (long long)t);
      if (!check_near(neon[i], exact[i], bound + 2e-5 * magnitude + 1e-5, what + " vs exact") ||
          !check_near(neon[i], scalar[i], 1e-5 * magnitude + 1e-6, what + " vs scalar level"))
        return;
    }
}

void check_matmuls() {
  ThreadPool pool(3);
  uint32_t seed = 1;
  for (TensorType type : {TensorType::F32, TensorType::F16, TensorType::BF16, TensorType::Q4_0, TensorType::Q4_1,
                          TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0, TensorType::Q4_K, TensorType::Q5_K,
                          TensorType::Q6_K, TensorType::Q2_K, TensorType::Q3_K, TensorType::IQ4_NL,
                          TensorType::IQ4_XS}) {
    const int64_t block = tensor_type_info(type).block_elems;
    const std::vector<int64_t> col_counts = test::matmul_test_col_counts(block);
    for (int64_t cols : col_counts)
      for (int64_t n_tokens = 1; n_tokens <= 9; ++n_tokens)
        check_matmul(type, n_tokens % 2 ? 37 : 16, cols, n_tokens, seed++, n_tokens % 3 == 0 ? nullptr : &pool);
  }
  // more tokens than one token block of the cache blocking (512 KiB)
  for (TensorType type : {TensorType::Q4_0, TensorType::Q6_K}) check_matmul(type, 19, 4096, 140, 77, &pool);
}

// ---- the K-quant scale searches: 8 sub-blocks at once (NEON vectors) give
// the single searches' bits, as on x86 (tests/kernel_kquant_search_test.cpp)

void check_k_quant_search_lanes() {
  using namespace onellm::quant;
  for (uint32_t trial = 0; trial < 200; ++trial) {
    const int n = trial % 3 == 2 ? 16 : 32, nmax = trial % 3 == 0 ? 15 : trial % 3 == 1 ? 31 : 3;
    const bool mad = n == 16;
    std::vector<float> x = normal_values(static_cast<size_t>(kSearchLanes * n), 900 + trial, 0.05f);
    if (trial % 5 == 4) std::fill(x.begin(), x.begin() + n, 0.25f);  // a sub-block of equal values
    std::vector<float> w(x.size());
    for (size_t i = 0; i < x.size(); ++i) w[i] = 0.01f + std::fabs(x[i]);
    uint8_t L1[kSearchLanes * 32], L2[kSearchLanes * 32];
    float m1[kSearchLanes], m2[kSearchLanes], s1[kSearchLanes], s2[kSearchLanes];
    for (int g = 0; g < kSearchLanes; ++g)
      s1[g] = search_scale_min(n, nmax, &x[g * n], &w[g * n], L1 + g * n, &m1[g], -0.5f, 0.1f, 15, mad);
    search_scale_min_lanes(n, nmax, x.data(), w.data(), L2, m2, s2, -0.5f, 0.1f, 15, mad);
    check(std::memcmp(s1, s2, sizeof s1) == 0 && std::memcmp(m1, m2, sizeof m1) == 0 &&
              std::memcmp(L1, L2, static_cast<size_t>(kSearchLanes * n)) == 0,
          format("search_scale_min_lanes trial %u (n %d, nmax %d): not the single searches' bits", trial, n, nmax));
    int8_t S1[kSearchLanes * 16], S2[kSearchLanes * 16];
    for (int g = 0; g < kSearchLanes; ++g) s1[g] = search_scale_symmetric(16, 32, &x[g * 16], S1 + g * 16);
    search_scale_symmetric_lanes(16, 32, x.data(), S2, s2);
    check(std::memcmp(s1, s2, sizeof s1) == 0 && std::memcmp(S1, S2, sizeof S1) == 0,
          format("search_scale_symmetric_lanes trial %u: not the single searches' bits", trial));
    uint8_t Q1[32] = {}, Q2[32] = {};
    const float q1 = search_iq4_scale(x.data(), Q1), q2 = search_iq4_scale_lanes(x.data(), Q2);
    check(std::memcmp(&q1, &q2, sizeof q1) == 0 && std::memcmp(Q1, Q2, sizeof Q1) == 0,
          format("search_iq4_scale_lanes trial %u: not the single search's bits", trial));
  }
}

}  // namespace
}  // namespace onellm

int main(int argc, char** argv) {
  using namespace onellm;
  const bool dotprod = cpu_features().dotprod;
  std::printf("CPU features: %s; best level %s; neon tables:", cpu_features_string().c_str(),
              cpu_level_name(best_cpu_level()));
  for (const fast::Kernels* k : neon_tables()) std::printf(" %s", k->name);
  std::printf("\n");
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--expect-dotprod" || arg == "--expect-no-dotprod")
      check(dotprod == (arg == "--expect-dotprod"),
            "dotprod detection: " + arg + " but cpu_features().dotprod = " + (dotprod ? "true" : "false"));
    else if (arg == "--expect-i8mm" || arg == "--expect-no-i8mm")
      check((fast::kernels_neon_i8mm() != nullptr) == (arg == "--expect-i8mm"),
            "i8mm table: " + arg + " but cpu_features().i8mm = " + (cpu_features().i8mm ? "true" : "false"));
    else
      check(false, "unknown argument " + arg);
  }
  check(cpu_level_supported(CpuLevel::kNeon) && best_cpu_level() == CpuLevel::kNeon, "neon is the best level");
  check(&fast::kernels_for(CpuLevel::kNeon) == neon_tables().back(), "kernels_for(neon) is the best NEON table");

  for (const fast::Kernels* k : neon_tables()) {
    check_quantize(*k);
    check_tiles(*k);
    check_vector_ops(*k);
    check_dequantize(*k);
    check_exp_swiglu(*k);
    check_accumulate(*k);
  }
  check_accumulate_threads();
  check_attention();
  check_attention_groups();
  check_matmuls();
  check_k_quant_search_lanes();
  std::printf("%d checks, %d failed\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
