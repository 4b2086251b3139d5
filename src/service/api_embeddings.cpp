// POST /v1/embeddings (OpenAI's shape, as llama-server and Ollama serve it):
// each input's final hidden states pooled (the model's pooling_type, or the
// request's "pooling") and L2-normalized, computed by the scheduler like any
// prompt: in chunks, in the app's QoS class, counted against its quota.
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "service/api_util.h"
#include "service/completion.h"
#include "service/service.h"

namespace onellm {
namespace {

using api::Json;

constexpr size_t kMaxInputs = 2048;  // OpenAI's limit per request

std::string base64_of_floats(const std::vector<float>& v) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes(v.size() * sizeof(float), '\0');
  std::memcpy(bytes.data(), v.data(), bytes.size());  // little-endian float32, as OpenAI's clients decode
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    uint32_t w = 0;
    for (size_t k = 0; k < 3; ++k) w = w << 8 | (k < n ? static_cast<uint8_t>(bytes[i + k]) : 0u);
    for (size_t k = 0; k < 4; ++k) out += k <= n ? kAlphabet[(w >> (18 - 6 * k)) & 63] : '=';
  }
  return out;
}

// "input": a string, an array of strings, an array of token ids, or an
// array of such arrays.
std::vector<std::vector<int32_t>> read_inputs(const Json& body, const Tokenizer& tok) {
  auto it = body.find("input");
  if (it == body.end() || it->is_null()) throw api::bad_request("'input' is required", "input");
  std::vector<std::vector<int32_t>> out;
  auto token_ids = [&](const Json& ids) { return api::read_token_ids(ids, tok.n_vocab(), "input"); };
  auto one = [&](const Json& x) {
    if (x.is_string()) out.push_back(tok.encode(x.get<std::string>(), true, false));
    else if (x.is_array()) out.push_back(token_ids(x));
    else throw api::bad_request("'input' must be a string, token ids, or an array of them", "input");
  };
  if (it->is_string()) one(*it);
  else if (it->is_array() && !it->empty() && it->front().is_number()) out.push_back(token_ids(*it));
  else if (it->is_array() && it->size() <= kMaxInputs) for (const Json& x : *it) one(x);
  else throw api::bad_request("'input' must be a string, token ids, or an array of up to 2048 of them", "input");
  if (out.empty()) throw api::bad_request("'input' is empty", "input");
  for (const auto& ids : out)
    if (ids.empty()) throw api::bad_request("an input has no tokens (an empty string?)", "input");
  return out;
}

}  // namespace

void Service::embeddings(const Caller& c, const HttpRequest& rq, HttpResponse& rs) {
  check_rate(c);
  Json body = api::parse_body(rq);
  LoadedModel& m = model();
  const std::vector<std::vector<int32_t>> inputs = read_inputs(body, *m.tokenizer);
  Pooling pooling = Pooling::kNone;
  if (body.contains("pooling") && !body["pooling"].is_null()) {
    const std::optional<Pooling> named = pooling_named(api::string_field(body, "pooling", ""));
    if (!named) throw api::bad_request("'pooling' must be mean, cls or last", "pooling");
    pooling = *named;
  } else {
    try {
      pooling = default_pooling(m.model->config());
    } catch (const Error& e) {
      throw api::bad_request(e.what(), "pooling");
    }
  }
  const std::string format = api::string_field(body, "encoding_format", "float");
  if (format != "float" && format != "base64")
    throw api::bad_request("'encoding_format' must be float or base64", "encoding_format");
  const int64_t D = m.model->config().n_embd;
  // "dimensions": the first N (Matryoshka-trained models).
  const int64_t dims = api::int_field(body, "dimensions", D, 1, D);
  const bool normalize = api::bool_field(body, "normalize", true);
  const QosClass q = qos_for(c, api::string_field(body, "qos", ""));
  size_t total = 0;
  for (const auto& ids : inputs) total += ids.size();
  check_tokens(c, total, 0);

  std::vector<std::vector<float>> vectors;
  if (!embed_inputs(c, q, inputs, {pooling, normalize, dims, false, "input"}, rs, vectors)) return;  // client gone
  Json data = Json::array();
  for (size_t i = 0; i < vectors.size(); ++i) {
    Json embedding = format == "base64" ? Json(base64_of_floats(vectors[i])) : Json(vectors[i]);
    data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", std::move(embedding)}});
  }
  api::send_json(rs, 200, {{"object", "list"}, {"data", std::move(data)}, {"model", model_name()},
                           {"usage", {{"prompt_tokens", total}, {"total_tokens", total}}}});
}

bool Service::embed_inputs(const Caller& c, const QosClass& q, std::vector<std::vector<int32_t>> inputs,
                           const EmbedOptions& o, HttpResponse& rs, std::vector<std::vector<float>>& vectors) {
  const int64_t D = model().model->config().n_embd;
  if (o.evaluated) *o.evaluated = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::unique_lock<std::mutex> hold;
    std::unique_ptr<SessionLease> lease = scratch_lease(c, inputs[i], q.priority, 0, SessionAdapter{}, hold);
    Sequence& seq = lease->sequence();
    if (o.truncate && static_cast<int64_t>(inputs[i].size()) > seq.n_ctx())
      inputs[i].resize(static_cast<size_t>(seq.n_ctx()));
    if (static_cast<int64_t>(inputs[i].size()) > seq.n_ctx())
      throw ServiceError("CONTEXT_TOO_LONG", "input " + std::to_string(i) + " has " + std::to_string(inputs[i].size()) +
                                                 " tokens; the context holds " + std::to_string(seq.n_ctx()),
                         400, 0, o.param);
    GenerationRequest request;
    request.prompt = inputs[i];
    request.max_tokens = 0;
    request.embed = o.pooling;
    request.embed_normalize = o.normalize && o.dims == D;  // a shortened vector is normalized below
    GenerationResult r = scheduler_->run(scheduled_request(*c.app, q, seq, std::move(request), rs), nullptr);
    if (r.finish == FinishReason::kCancelled) return false;
    store_->add_usage(c.app->id, static_cast<int64_t>(inputs[i].size()));
    if (o.evaluated) *o.evaluated += inputs[i].size();
    std::vector<float> e = std::move(r.embedding);
    if (o.dims < D) {  // the first N (Matryoshka-trained models)
      e.resize(static_cast<size_t>(o.dims));
      double norm = 0;
      for (float x : e) norm += static_cast<double>(x) * x;
      if (o.normalize && norm > 0)
        for (float& x : e) x = static_cast<float>(x / std::sqrt(norm));
    }
    vectors.push_back(std::move(e));
  }
  return true;
}

}  // namespace onellm
