// Attention of a forward pass over the KV cache: the fast path (the query
// heads of one KV head together, long histories split in chunks and merged)
// and the per-(row, head) path that records what each query attended to.
#include <algorithm>
#include <cmath>
#include <mutex>
#include <vector>

#include "model/pass_state.h"

namespace onellm {

// Attention: a row sees positions 0 .. its own of its own cache (causal).
// Rows whose attention a tracking cache records (KvCache::add_attention) go
// one (row, head) pair per work item and keep their probabilities; the
// others take the fast path, the query heads of one KV head together. A
// query's record weighs attention_decay() per later query, so only a chunk's
// last kTrackedRows rows are recorded: together the rows before them would
// weigh ~1e-3 of the total (0.9^88 / 0.1), and recording every row of a long
// chunk cost more than the rest of the pass.
void Model::Pass::State::attention(int64_t l) {
  constexpr int64_t kTrackedRows = 88;
  const ModelConfig& c = model.config_;
  const bool exact = mode == MathMode::kExact;
  const int64_t QD = c.q_dim(), HD = c.head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HD));
  const int64_t group = c.n_head / c.n_head_kv;
  // Whether row r's attention is recorded: its cache tracks, and fewer than
  // kTrackedRows rows of its segment come after it.
  auto records = [&](int64_t r) {
    const size_t s = static_cast<size_t>(seg_of[static_cast<size_t>(r)]);
    return segments[s].cache->tracking_attention() && row0[s] + segments[s].n - 1 - r < kTrackedRows;
  };
  std::vector<int64_t> slow_rows, fast_rows;
  for (int64_t r = 0; r < n; ++r) (exact || records(r) ? slow_rows : fast_rows).push_back(r);
  auto attend_items = [&](int64_t begin, int64_t end) {
    std::vector<float> probs;
    std::vector<double> received, queries;
    int64_t tracked = -1;  // the segment whose partial sums `received` holds
    auto merge = [&] {
      if (tracked < 0) return;
      std::lock_guard<std::mutex> lock(attention_mu);
      segments[tracked].cache->add_attention(received.data(), queries.data(), static_cast<int64_t>(received.size()));
    };
    for (int64_t item = begin; item < end; ++item) {
      const int64_t r = slow_rows[static_cast<size_t>(item / c.n_head)], h = item % c.n_head, kvh = h / group;
      const int64_t s = seg_of[static_cast<size_t>(r)];
      KvCache& cache = *segments[s].cache;
      const bool track = records(r);
      const int64_t n_keys = pos_of[static_cast<size_t>(r)] + 1;
      if (track && tracked != s) {
        merge();
        tracked = s;
        const size_t span = static_cast<size_t>(pos0[static_cast<size_t>(s)] + segments[s].n);
        probs.assign(span, 0.0f);
        received.assign(span, 0.0);
        queries.assign(span, 0.0);
      }
      const KvRows keys = cache.k_rows(l, kvh), values = cache.v_rows(l, kvh);
      float* out = &att_out[r * QD + h * HD];
      float* p = track ? probs.data() : nullptr;
      if (exact) attend_exact(&q[r * QD + h * HD], keys, values, n_keys, HD, scale, out, p);
      else attend(&q[r * QD + h * HD], keys, values, n_keys, HD, scale, out, p);
      if (track) {
        const int64_t t = r - row0[static_cast<size_t>(s)];
        const double weight = std::pow(KvCache::attention_decay(), static_cast<double>(segments[s].n - 1 - t));
        for (int64_t j = 0; j < n_keys; ++j) {
          received[static_cast<size_t>(j)] += weight * probs[static_cast<size_t>(j)] * static_cast<double>(n_keys);
          queries[static_cast<size_t>(j)] += weight;
        }
      }
    }
    merge();
  };
  // Prefill over an F16/Q8_0 cache: attend_group converts the rows it reads
  // to F32 on every call, i.e. once per row of the chunk (quadratic; ~12 %
  // of an F16 model's pp512). A segment with several fast rows has its
  // keys and values up to its last position converted once per layer, up
  // to kMaxF32KvBytes (the buffers stay allocated for the next pass; longer
  // contexts convert per row as before).
  constexpr int64_t kMaxF32KvBytes = int64_t{16} << 20;
  // A sequence that decodes (fewer than kSplitRowsBelow rows in this pass)
  // over a long context splits its keys in chunks (below).
  constexpr int64_t kSplitRowsBelow = 4, kKeyChunk = 1024;
  // At the amx level a prefilling segment's keys and values go into the
  // tiles' BF16 layout instead (prepare_kv_tiles: half the bytes of F32),
  // once per layer rather than once per call of every tile of rows.
  const bool kv_tiles = kv_tiles_supported(HD);
  const int64_t KVD = c.kv_dim();
  std::vector<const float*> f32_k(segments.size(), nullptr), f32_v(segments.size(), nullptr);
  std::vector<int64_t> f32_keys(segments.size(), 0);  // positions per head in f32_k / f32_v or tiles_k / tiles_v
  std::vector<const uint8_t*> tiles_k(segments.size(), nullptr), tiles_v(segments.size(), nullptr);
  thread_local std::vector<std::vector<float>> f32_rows;  // capacity kept between layers and passes
  thread_local std::vector<std::vector<uint8_t>> tile_rows;
  f32_rows.resize(std::max(f32_rows.size(), 2 * segments.size()));
  tile_rows.resize(std::max(tile_rows.size(), 2 * segments.size()));
  for (size_t s = 0; s < segments.size(); ++s) {
    const KvCache& cache = *segments[s].cache;
    const bool as_tiles = kv_tiles && segments[s].n >= kSplitRowsBelow;
    if ((cache.type() == TensorType::F32 && !as_tiles) || segments[s].n < 2) continue;
    int64_t n_keys = 0, n_rows = 0;
    for (int64_t r : fast_rows)
      if (seg_of[static_cast<size_t>(r)] == static_cast<int64_t>(s)) {
        n_keys = std::max(n_keys, pos_of[static_cast<size_t>(r)] + 1);
        ++n_rows;
      }
    if (n_rows < 2 || 2 * n_keys * KVD * static_cast<int64_t>(sizeof(float)) > kMaxF32KvBytes) continue;
    f32_keys[s] = n_keys;
    if (as_tiles) {
      const size_t head_bytes = kv_tile_bytes(n_keys, HD);
      std::vector<uint8_t>& kb = tile_rows[2 * s];
      std::vector<uint8_t>& vb = tile_rows[2 * s + 1];
      kb.resize(head_bytes * static_cast<size_t>(c.n_head_kv));
      vb.resize(kb.size());
      const int64_t n_blocks = (n_keys + kKvTileKeys - 1) / kKvTileKeys;
      auto prepare = [&](int64_t b0, int64_t b1) {
        for (int64_t h = 0; h < c.n_head_kv; ++h)
          prepare_kv_tiles(cache.k_rows(l, h), cache.v_rows(l, h), kKvTileKeys * b0,
                           std::min(kKvTileKeys * b1, n_keys), HD, kb.data() + h * head_bytes,
                           vb.data() + h * head_bytes);
      };
      if (pool != nullptr && n_blocks > 1) pool->parallel_for(n_blocks, prepare);
      else prepare(0, n_blocks);
      tiles_k[s] = kb.data();
      tiles_v[s] = vb.data();
      continue;
    }
    std::vector<float>& kb = f32_rows[2 * s];
    std::vector<float>& vb = f32_rows[2 * s + 1];
    kb.resize(static_cast<size_t>(n_keys * KVD));
    vb.resize(static_cast<size_t>(n_keys * KVD));
    // [head][position][head_dim], as the cache: a head's positions convert
    // as one run.
    auto convert = [&](int64_t j0, int64_t j1) {
      for (int64_t h = 0; h < c.n_head_kv; ++h) {
        const size_t at = static_cast<size_t>((h * n_keys + j0) * HD);
        dequantize_row_fast(cache.type(), cache.k_at(l, h, j0), &kb[at], (j1 - j0) * HD);
        dequantize_row_fast(cache.type(), cache.v_at(l, h, j0), &vb[at], (j1 - j0) * HD);
      }
    };
    if (pool != nullptr && n_keys * KVD > (int64_t{1} << 16)) pool->parallel_for(n_keys, convert);
    else convert(0, n_keys);
    f32_k[s] = kb.data();
    f32_v[s] = vb.data();
  }
  // The fast rows go in tiles; a work item is a tile's KV head (or a chunk
  // of its keys). A sequence that decodes (fewer than kSplitRowsBelow rows
  // in this pass) over a long context has one row per tile, its keys in
  // chunks of kKeyChunk, and the unnormalized parts are merged after: with
  // one item per KV head, a model whose KV heads do not divide among the
  // threads left one idle. Whether a row is split depends only on its own
  // sequence, not on the thread count or on the other sequences of a batch,
  // so neither do its results.
  // A prefill's tile holds up to 16 / group consecutive rows of its
  // sequence, whose queries of one KV head go in one call, each masked at
  // its row's position: the key blocks are read (and on AVX-512 transposed)
  // once per tile, not once per row (SmolLM2's 3 heads per KV head spent
  // most of the call on the transpose).
  // Chunks of 1024 keys: with each head's keys contiguous, SmolLM2's decode
  // @ d2048-4096 ran 8-12 % faster than with 512 (session 31).
  const int64_t rows_per_tile = std::max<int64_t>(1, 16 / group);
  struct Tile {
    size_t first;  // index into fast_rows
    int64_t n_rows, chunks;
  };
  std::vector<Tile> tiles;
  for (size_t i = 0; i < fast_rows.size();) {
    const int64_t s = seg_of[static_cast<size_t>(fast_rows[i])];
    const int64_t n_keys = pos_of[static_cast<size_t>(fast_rows[i])] + 1;
    if (segments[static_cast<size_t>(s)].n < kSplitRowsBelow) {
      tiles.push_back({i, 1, n_keys > kKeyChunk ? (n_keys + kKeyChunk - 1) / kKeyChunk : 1});
      ++i;
      continue;
    }
    size_t end = i + 1;
    while (end < fast_rows.size() && static_cast<int64_t>(end - i) < rows_per_tile &&
           seg_of[static_cast<size_t>(fast_rows[end])] == s)
      ++end;
    tiles.push_back({i, static_cast<int64_t>(end - i), 1});
    i = end;
  }
  // A causal prefill's tiles grow in cost with their position, and
  // parallel_for hands each thread a contiguous range of items: taken
  // first, last, second, second to last, ..., every range costs about the
  // same (one thread had three quarters of a pp512's attention).
  std::vector<Tile> ordered;
  ordered.reserve(tiles.size());
  for (size_t a = 0, b = tiles.size(); a < b;) {
    ordered.push_back(tiles[a++]);
    if (a < b) ordered.push_back(tiles[--b]);
  }
  tiles.swap(ordered);
  const size_t n_tiles = tiles.size();
  // Items go KV head by KV head (item = kvh * n_chunks + the tile's first
  // chunk + chunk): a thread's run reads one head's keys, contiguous in the
  // cache, and for prefill reused from the CPU cache by every tile of the
  // run (tile by tile, every head's rows passed through it: +3-7 % pp512 @
  // d4096). The F32 copies of prefill are laid out per head as well.
  std::vector<int64_t> first_chunk(n_tiles + 1, 0), first_part(n_tiles + 1, 0);
  for (size_t i = 0; i < n_tiles; ++i) {
    first_chunk[i + 1] = first_chunk[i] + tiles[i].chunks;
    first_part[i + 1] = first_part[i] + (tiles[i].chunks > 1 ? tiles[i].chunks * c.n_head_kv : 0);
  }
  const int64_t n_chunks = first_chunk.back();
  // Parts of tile i, KV head kvh, chunk k at first_part[i] + kvh * chunks + k.
  const int64_t part_floats = group * HD;
  // Kept between layers and passes (the caller's thread; the workers get
  // the pointers: a thread_local named in the lambda would be their own).
  thread_local std::vector<float> part_buffer;
  part_buffer.resize(static_cast<size_t>(first_part.back() * (part_floats + 2 * group)));
  float* const parts = part_buffer.data();
  float* const part_max = parts + first_part.back() * part_floats;
  float* const part_sum = part_max + first_part.back() * group;
  auto attend_groups = [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> tile_q, tile_out;  // this thread's own
    thread_local std::vector<int64_t> tile_keys;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t kvh = item / n_chunks, h0 = kvh * group, at = item % n_chunks;
      const size_t i =
          static_cast<size_t>(std::upper_bound(first_chunk.begin(), first_chunk.end(), at) - first_chunk.begin()) - 1;
      const Tile& tile = tiles[i];
      const int64_t r = fast_rows[tile.first], chunk = at - first_chunk[i];
      const size_t s = static_cast<size_t>(seg_of[static_cast<size_t>(r)]);
      const KvCache& cache = *segments[s].cache;
      KvRows keys = cache.k_rows(l, kvh), values = cache.v_rows(l, kvh);
      if (f32_k[s] != nullptr) {  // [head][position][head_dim], as the cache
        const size_t f32_stride = static_cast<size_t>(HD) * sizeof(float), head_floats = f32_keys[s] * HD;
        keys = {TensorType::F32, reinterpret_cast<const uint8_t*>(f32_k[s] + kvh * head_floats), f32_stride};
        values = {TensorType::F32, reinterpret_cast<const uint8_t*>(f32_v[s] + kvh * head_floats), f32_stride};
      } else if (tiles_k[s] != nullptr) {  // [head][block of 32 keys], the tiles' layout
        const size_t head_bytes = kv_tile_bytes(f32_keys[s], HD);
        keys = KvRows{TensorType::BF16, tiles_k[s] + kvh * head_bytes, 0, true};
        values = KvRows{TensorType::BF16, tiles_v[s] + kvh * head_bytes, 0, true};
      }
      const int64_t n_keys = pos_of[static_cast<size_t>(r)] + 1;
      if (tile.n_rows > 1) {
        const int64_t n_q = tile.n_rows * group, head_floats = group * HD;
        tile_q.resize(static_cast<size_t>(n_q * HD));
        tile_out.resize(tile_q.size());
        tile_keys.resize(static_cast<size_t>(n_q));
        for (int64_t t = 0; t < tile.n_rows; ++t) {
          const int64_t row = fast_rows[tile.first + static_cast<size_t>(t)];
          std::copy_n(&q[row * QD + h0 * HD], head_floats, &tile_q[static_cast<size_t>(t * head_floats)]);
          std::fill_n(&tile_keys[static_cast<size_t>(t * group)], group, pos_of[static_cast<size_t>(row)] + 1);
        }
        attend_group_causal(tile_q.data(), n_q, tile_keys.data(), keys, values, HD, scale, tile_out.data());
        for (int64_t t = 0; t < tile.n_rows; ++t) {
          const int64_t row = fast_rows[tile.first + static_cast<size_t>(t)];
          std::copy_n(&tile_out[static_cast<size_t>(t * head_floats)], head_floats, &att_out[row * QD + h0 * HD]);
        }
        continue;
      }
      if (tile.chunks == 1) {
        attend_group(&q[r * QD + h0 * HD], group, keys, values, n_keys, HD, scale, &att_out[r * QD + h0 * HD]);
        continue;
      }
      const int64_t j0 = chunk * kKeyChunk, part = first_part[i] + kvh * tile.chunks + chunk;
      keys.data += static_cast<size_t>(j0) * keys.stride;
      values.data += static_cast<size_t>(j0) * values.stride;
      attend_group_partial(&q[r * QD + h0 * HD], group, keys, values, std::min(kKeyChunk, n_keys - j0), HD, scale,
                           parts + part * part_floats, part_max + part * group, part_sum + part * group);
    }
  };
  const int64_t n_fast = n_chunks * c.n_head_kv;
  const int64_t n_slow = static_cast<int64_t>(slow_rows.size()) * c.n_head;
  if (n_fast > 0) {
    if (pool != nullptr) pool->parallel_for(n_fast, attend_groups);
    else attend_groups(0, n_fast);
  }
  for (size_t i = 0; i < n_tiles; ++i) {
    if (tiles[i].chunks == 1) continue;
    const int64_t r = fast_rows[tiles[i].first];
    for (int64_t kvh = 0; kvh < c.n_head_kv; ++kvh) {
      const int64_t part = first_part[i] + kvh * tiles[i].chunks;
      merge_attention(parts + part * part_floats, part_max + part * group, part_sum + part * group, tiles[i].chunks,
                      group, HD, &att_out[r * QD + kvh * group * HD]);
    }
  }
  if (n_slow > 0) {
    if (pool != nullptr) pool->parallel_for(n_slow, attend_items);
    else attend_items(0, n_slow);
  }
}

}  // namespace onellm
