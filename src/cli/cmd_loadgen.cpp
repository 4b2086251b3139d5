// onellm loadgen TRACE.json: replays a multi-app workload against a running
// service through the client library and reports, per QoS class, TTFT and
// TPOT percentiles, SLO attainment, throughput and errors.
//
// Trace: {"duration_s": 20, "seed": 1, "address": "unix:/path" | "http://127.0.0.1:PORT",
//         "apps": [{"name": "assistant", "token": null, "qos": "voice", "rate_per_s": 0.5 | "concurrency": 2,
//                   "prompt_words": 20, "max_tokens": 16, "ttft_slo_ms": 300, "tpot_slo_ms": 60}]}
// "rate_per_s" gives Poisson arrivals (open loop); "concurrency" gives that many clients back to back.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "base/error.h"
#include "cli/commands.h"
#include "client/onellm_client.h"

namespace onellm::cli {
namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

struct Sample {
  bool ok = false;
  std::string error;
  double ttft_ms = 0, tpot_ms = 0;
  size_t tokens = 0;
};

struct AppLoad {
  std::string name, token, qos;
  double rate = 0;
  int concurrency = 0;
  int prompt_words = 20, max_tokens = 16;
  double ttft_slo = 1000, tpot_slo = 200;
  bool ignore_eos = true;  // fixed output lengths make runs comparable
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size()))) ;
  return v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)];
}

Sample one_request(const std::string& address, const AppLoad& app, std::mt19937& rng) {
  static const char* words[] = {"the", "little", "dog", "ran", "to", "park", "and", "saw", "a", "big", "red", "ball"};
  std::string prompt;
  for (int i = 0; i < app.prompt_words; ++i) prompt += std::string(i ? " " : "") + words[rng() % 12];
  onellm_client* c = onellm_client_new(address.c_str(), app.token.empty() ? nullptr : app.token.c_str());
  onellm_options o;
  onellm_options_init(&o);
  o.max_tokens = app.max_tokens;
  o.temperature = 0.7f;
  o.seed = static_cast<long long>(rng() % 100000);
  o.qos = app.qos.empty() ? nullptr : app.qos.c_str();
  o.ignore_eos = app.ignore_eos ? 1 : 0;
  struct Timing {
    Clock::time_point start, first, last;
    size_t pieces = 0;
  } t;
  t.start = Clock::now();
  auto on_text = [](const char*, size_t, void* user) {
    auto* tm = static_cast<Timing*>(user);
    tm->last = Clock::now();
    if (tm->pieces++ == 0) tm->first = tm->last;
    return 1;
  };
  int rc = onellm_chat(c, prompt.c_str(), &o, on_text, &t, nullptr);
  Sample s;
  s.ok = rc == ONELLM_OK && t.pieces > 0;
  if (rc != ONELLM_OK) s.error = onellm_last_error_code(c);
  else if (t.pieces == 0) s.error = "EMPTY";
  onellm_client_free(c);
  if (s.ok) {
    s.tokens = t.pieces;
    s.ttft_ms = std::chrono::duration<double, std::milli>(t.first - t.start).count();
    s.tpot_ms = t.pieces > 1 ? std::chrono::duration<double, std::milli>(t.last - t.first).count() / (t.pieces - 1) : 0;
  }
  return s;
}

}  // namespace

int loadgen_command(int argc, char** argv) {
  Args a(argc, argv, 2, {"--address", "--duration"}, {"--json", "-h", "--help"});
  if (a.flag({"-h", "--help"}) || a.positional().empty()) {
    std::puts("onellm loadgen TRACE.json [--address unix:/path|http://127.0.0.1:PORT] [--duration S] [--json]");
    return a.positional().empty() ? 2 : 0;
  }
  std::ifstream in(a.positional()[0]);
  if (!in) throw Error(a.positional()[0] + ": cannot open trace");
  Json trace = Json::parse(in, nullptr, false);
  if (trace.is_discarded() || !trace.is_object() || !trace.contains("apps"))
    throw Error(a.positional()[0] + ": not a trace (a JSON object with \"apps\")");
  const std::string address = a.get_or({"--address"}, trace.value("address", ""));
  const double duration = a.get_double({"--duration"}, trace.value("duration_s", 20.0));
  const unsigned seed = trace.value("seed", 1u);
  std::vector<AppLoad> apps;
  for (const Json& j : trace["apps"]) {
    AppLoad app;
    app.name = j.value("name", "app" + std::to_string(apps.size()));
    app.token = j.contains("token") && j["token"].is_string() ? j["token"].get<std::string>() : "";
    app.qos = j.value("qos", "");
    app.rate = j.value("rate_per_s", 0.0);
    app.concurrency = j.value("concurrency", 0);
    app.prompt_words = j.value("prompt_words", 20);
    app.max_tokens = j.value("max_tokens", 16);
    app.ttft_slo = j.value("ttft_slo_ms", 1000.0);
    app.tpot_slo = j.value("tpot_slo_ms", 200.0);
    app.ignore_eos = j.value("ignore_eos", true);
    if (app.rate <= 0 && app.concurrency <= 0) throw Error("trace app '" + app.name + "' needs rate_per_s or concurrency");
    apps.push_back(app);
  }

  std::mutex mu;
  std::map<std::string, std::vector<Sample>> by_class;
  const auto end = Clock::now() + std::chrono::duration<double>(duration);
  std::vector<std::thread> threads;
  std::atomic<int> in_flight{0};
  for (size_t i = 0; i < apps.size(); ++i) {
    const AppLoad app = apps[i];
    auto record = [&, app](const Sample& s) {
      std::lock_guard<std::mutex> lock(mu);
      by_class[app.qos.empty() ? app.name : app.qos].push_back(s);
    };
    if (app.concurrency > 0) {
      for (int k = 0; k < app.concurrency; ++k)
        threads.emplace_back([&, app, record, k] {
          std::mt19937 rng(seed * 7919 + static_cast<unsigned>(i * 131 + k));
          while (Clock::now() < end) record(one_request(address, app, rng));
        });
    } else {
      threads.emplace_back([&, app, record] {
        std::mt19937 rng(seed * 104729 + static_cast<unsigned>(i));
        std::exponential_distribution<double> gap(app.rate);
        std::vector<std::thread> requests;
        auto next = Clock::now();
        while (true) {
          next += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(gap(rng)));
          if (next >= end) break;
          std::this_thread::sleep_until(next);
          unsigned s = static_cast<unsigned>(rng());
          in_flight++;
          requests.emplace_back([&, app, record, s] {
            std::mt19937 r(s);
            record(one_request(address, app, r));
            in_flight--;
          });
        }
        for (auto& t : requests) t.join();
      });
    }
  }
  for (auto& t : threads) t.join();

  Json report = Json::object();
  std::printf("| class | requests | errors | TTFT p50/p95/p99 ms | TPOT p50/p95/p99 ms | SLO met | tokens/s |\n");
  std::printf("| --- | ---: | --- | ---: | ---: | ---: | ---: |\n");
  for (const auto& [cls, samples] : by_class) {
    std::vector<double> ttft, tpot;
    size_t errors = 0, met = 0, tokens = 0;
    std::map<std::string, int> error_codes;
    const AppLoad* app = nullptr;
    for (const AppLoad& x : apps)
      if ((x.qos.empty() ? x.name : x.qos) == cls) app = &x;
    for (const Sample& s : samples) {
      if (!s.ok) {
        errors++;
        error_codes[s.error]++;
        continue;
      }
      ttft.push_back(s.ttft_ms);
      tpot.push_back(s.tpot_ms);
      tokens += s.tokens;
      if (s.ttft_ms <= app->ttft_slo && s.tpot_ms <= app->tpot_slo) met++;
    }
    const double attainment = samples.empty() ? 0 : static_cast<double>(met) / static_cast<double>(samples.size());
    report[cls] = {{"requests", samples.size()}, {"errors", errors}, {"error_codes", error_codes},
                   {"ttft_ms", {{"p50", percentile(ttft, 50)}, {"p95", percentile(ttft, 95)}, {"p99", percentile(ttft, 99)}}},
                   {"tpot_ms", {{"p50", percentile(tpot, 50)}, {"p95", percentile(tpot, 95)}, {"p99", percentile(tpot, 99)}}},
                   {"slo_attainment", attainment}, {"tokens_per_s", static_cast<double>(tokens) / duration}};
    std::string codes;
    for (const auto& [code, n] : error_codes) codes += (codes.empty() ? " " : ", ") + code + " " + std::to_string(n);
    std::printf("| %s | %zu | %zu%s | %.0f / %.0f / %.0f | %.1f / %.1f / %.1f | %.0f%% | %.1f |\n", cls.c_str(),
                samples.size(), errors, codes.c_str(), percentile(ttft, 50), percentile(ttft, 95), percentile(ttft, 99),
                percentile(tpot, 50), percentile(tpot, 95), percentile(tpot, 99), 100 * attainment,
                static_cast<double>(tokens) / duration);
  }
  if (a.flag({"--json"})) std::printf("%s\n", report.dump(2).c_str());
  return 0;
}

}  // namespace onellm::cli
