// Essential-state evaluation of GUI traces, and the screen embeddings the
// `fuzzy` state compares.
#include "agent/trace_eval.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "base/error.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace onellm {

using nlohmann::json;

namespace {

constexpr size_t kHashBuckets = 1 << 12;

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return h;
}

void normalize(std::vector<float>& v) {
  double n = 0;
  for (float x : v) n += double(x) * x;
  if (n > 0)
    for (float& x : v) x = static_cast<float>(x / std::sqrt(n));
}

class HashedNgramEmbedder : public ScreenEmbedder {
 public:
  std::vector<float> embed(const std::string& text) const override {
    std::vector<float> v(kHashBuckets, 0.0f);
    std::vector<std::string> words;
    std::string w;
    for (char c : text + " ") {
      if (c == ' ' || c == '\n' || c == '\t' || c == '"') {
        if (!w.empty()) words.push_back(w);
        w.clear();
      } else {
        w += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
    }
    for (size_t i = 0; i < words.size(); ++i) {
      v[fnv1a(words[i]) % kHashBuckets] += 1;
      if (i + 1 < words.size()) v[fnv1a(words[i] + " " + words[i + 1]) % kHashBuckets] += 1;
    }
    normalize(v);
    return v;
  }
  std::string name() const override { return "hashed word 1-2 grams"; }
};

class TokenEmbeddingEmbedder : public ScreenEmbedder {
 public:
  TokenEmbeddingEmbedder(const Model& model, const Tokenizer& tokenizer) : tokenizer_(tokenizer) {
    const GgufTensor& t = model.gguf().tensor("token_embd.weight");
    embd_ = MatrixView{t.type, t.data, model.config().n_vocab, model.config().n_embd};
  }
  std::vector<float> embed(const std::string& text) const override {
    std::vector<float> mean(static_cast<size_t>(embd_.cols), 0.0f), row(mean.size());
    std::vector<int32_t> ids = tokenizer_.encode(text, false, false);
    for (int32_t id : ids) {
      if (id < 0 || id >= embd_.rows) continue;
      matrix_row(embd_, id, row.data());
      for (size_t i = 0; i < row.size(); ++i) mean[i] += row[i];
    }
    // Centering is left out: cosine of means still separates screens that
    // share little text, which is what the fuzzy state needs.
    normalize(mean);
    return mean;
  }
  std::string name() const override { return "mean token embedding"; }

 private:
  const Tokenizer& tokenizer_;
  MatrixView embd_;
};

const char* const kKinds[] = {"exact", "fuzzy", "textbox", "activity", "click", "type", "installed", "uninstalled"};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A node matches when every attribute of the spec equals the node's
// (resource-id by full name or by the part after ":id/").
bool node_matches(const ViewNode& n, const json& spec) {
  for (auto& [key, value] : spec.items()) {
    const std::string v = value.is_string() ? value.get<std::string>() : value.dump();
    if (key == "resource-id") {
      if (n.resource_id != v && n.short_id() != v) return false;
    } else if (key == "text") {
      if (n.text != v) return false;
    } else if (key == "content-desc") {
      if (n.content_desc != v) return false;
    } else if (key == "class") {
      if (n.class_name != v && n.short_class() != v) return false;
    } else if (key == "checked") {
      if ((n.checked ? "true" : "false") != v) return false;
    } else if (key == "selected") {
      if ((n.selected ? "true" : "false") != v) return false;
    } else if (key == "enabled") {
      if ((n.enabled ? "true" : "false") != v) return false;
    } else if (key == "text_contains") {
      if (n.text.find(v) == std::string::npos && n.content_desc.find(v) == std::string::npos) return false;
    } else {
      throw Error("essential state: unknown node attribute '" + key + "'");
    }
  }
  return true;
}

struct StepView {
  const TraceStep* step;
  std::unique_ptr<ScreenView> screen;  // parsed lazily
  const std::vector<InstalledApp>* apps;
};

class Matcher {
 public:
  Matcher(const GuiTask& task, const GuiTrace& trace, const ScreenEmbedder& embedder)
      : task_(task), embedder_(embedder) {
    const std::vector<InstalledApp>* apps = nullptr;
    for (const TraceStep& s : trace.steps) {
      if (s.installed_apps) apps = &*s.installed_apps;
      steps_.push_back({&s, nullptr, apps});
    }
  }
  size_t size() const { return steps_.size(); }

  bool matches(const json& spec, size_t i) {
    const std::string kind = spec.at("kind").get<std::string>();
    StepView& sv = steps_[i];
    const TraceStep& step = *sv.step;
    if (kind == "activity") {
      const std::string want = spec.at("activity").get<std::string>();
      return step.activity == want ||
             (step.activity.size() > want.size() && step.activity.compare(step.activity.size() - want.size(), want.size(), want) == 0 &&
              (want[0] == '/' || want[0] == '.'));
    }
    if (kind == "installed" || kind == "uninstalled") {
      if (!sv.apps) return false;
      const std::string pkg = spec.at("package").get<std::string>();
      const bool present = std::any_of(sv.apps->begin(), sv.apps->end(),
                                       [&](const InstalledApp& a) { return a.package == pkg || a.name == pkg; });
      return kind == "installed" ? present : !present;
    }
    if (kind == "type") {
      if (!step.action || step.action->type != GuiActionType::kInputText) return false;
      if (step.action->text != spec.at("text").get<std::string>()) return false;
      if (!spec.contains("node")) return true;
      const int node = target_node(i);
      return node >= 0 && node_matches(screen(i).tree.nodes[node], spec["node"]);
    }
    if (kind == "click") {
      if (!step.action || step.action->type != GuiActionType::kClick) return false;
      const ScreenView& v = screen(i);
      int x, y;
      if (!tap_point(i, x, y)) return false;
      for (const ViewNode& n : v.tree.nodes)
        if (n.has_bounds && n.bounds.contains(x, y) && node_matches(n, spec.at("node"))) return true;
      return false;
    }
    if (kind == "exact" || kind == "textbox") {
      const ScreenView& v = screen(i);
      for (const ViewNode& n : v.tree.nodes) {
        if (!node_matches(n, spec.at("node"))) continue;
        if (kind == "exact") return true;
        if (n.editable() && n.text == spec.at("text").get<std::string>()) return true;
      }
      return false;
    }
    if (kind == "fuzzy") {
      const std::string path = task_.dir + "/" + spec.at("screen").get<std::string>();
      auto ref = references_.find(path);
      if (ref == references_.end())
        ref = references_.emplace(path, embedder_.embed(screen_text(parse_screen(read_text(path))))).first;
      const float threshold = spec.value("threshold", 0.9f);
      return cosine_similarity(embedder_.embed(screen_text(screen(i))), ref->second) >= threshold;
    }
    throw Error("essential state: unknown kind '" + kind + "'");
  }

 private:
  const ScreenView& screen(size_t i) {
    if (!steps_[i].screen) steps_[i].screen = std::make_unique<ScreenView>(parse_screen(steps_[i].step->view_hierarchy));
    return *steps_[i].screen;
  }
  bool tap_point(size_t i, int& x, int& y) {
    const GuiAction& a = *steps_[i].step->action;
    const ScreenView& v = screen(i);
    if (a.index >= 0) {
      if (a.index >= static_cast<int>(v.elements.size())) return false;
      DeviceCommand c = device_command(a, v);
      x = c.x;
      y = c.y;
      return true;
    }
    if (!a.x) return false;
    x = *a.x;
    y = *a.y;
    return true;
  }
  int target_node(size_t i) {
    const GuiAction& a = *steps_[i].step->action;
    const ScreenView& v = screen(i);
    if (a.index >= 0 && a.index < static_cast<int>(v.elements.size())) return v.elements[a.index].node;
    int x, y;
    if (!tap_point(i, x, y)) return -1;
    const int e = v.element_at(x, y);
    return e < 0 ? -1 : v.elements[e].node;
  }

  const GuiTask& task_;
  const ScreenEmbedder& embedder_;
  std::vector<StepView> steps_;
  std::map<std::string, std::vector<float>> references_;  // fuzzy reference screens by path
};

void check_state(const json& s, const std::string& where) {
  if (!s.is_object() || !s.contains("kind") || !s["kind"].is_string()) throw Error(where + ": needs a 'kind'");
  const std::string kind = s["kind"];
  if (std::find(std::begin(kKinds), std::end(kKinds), kind) == std::end(kKinds))
    throw Error(where + ": unknown kind '" + kind + "'");
  auto need = [&](const char* field) {
    if (!s.contains(field)) throw Error(where + ": " + kind + " needs '" + field + "'");
  };
  if (kind == "exact" || kind == "click") need("node");
  if (kind == "textbox") need("node"), need("text");
  if (kind == "type") need("text");
  if (kind == "activity") need("activity");
  if (kind == "installed" || kind == "uninstalled") need("package");
  if (kind == "fuzzy") need("screen");
}

}  // namespace

std::unique_ptr<ScreenEmbedder> hashed_ngram_embedder() { return std::make_unique<HashedNgramEmbedder>(); }

std::unique_ptr<ScreenEmbedder> token_embedding_embedder(const Model& model, const Tokenizer& tokenizer) {
  return std::make_unique<TokenEmbeddingEmbedder>(model, tokenizer);
}

float cosine_similarity(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size() || a.empty()) return 0;
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    dot += double(a[i]) * b[i];
    na += double(a[i]) * a[i];
    nb += double(b[i]) * b[i];
  }
  return na > 0 && nb > 0 ? static_cast<float>(dot / std::sqrt(na * nb)) : 0.0f;
}

std::string screen_text(const ScreenView& screen) { return screen.element_list(); }

std::string EssentialState::describe() const {
  const std::string kind = spec.value("kind", "?");
  std::vector<std::string> args;
  if (spec.contains("node"))
    for (auto& [k, v] : spec["node"].items()) args.push_back(k + "=" + (v.is_string() ? v.get<std::string>() : v.dump()));
  for (const char* f : {"text", "activity", "package", "screen"})
    if (spec.contains(f)) args.push_back(spec[f].get<std::string>());
  std::string out = kind;
  out += '<';
  for (size_t i = 0; i < args.size(); ++i) {
    if (i > 0) out += ',';
    out += args[i];
  }
  out += '>';
  return out;
}

int TraceVerdict::matched() const {
  return static_cast<int>(std::count_if(matched_step.begin(), matched_step.end(), [](int s) { return s >= 0; }));
}

std::vector<GuiTask> load_gui_tasks(const std::string& dir) {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.path().extension() == ".json") files.push_back(e.path());
  if (ec) throw Error(dir + ": " + ec.message());
  std::sort(files.begin(), files.end());
  std::vector<GuiTask> tasks;
  for (const auto& f : files) {
    json j = json::parse(read_text(f.string()), nullptr, false);
    if (j.is_discarded() || !j.is_array()) throw Error(f.string() + ": expected a JSON array of tasks");
    for (const json& t : j) {
      GuiTask task;
      task.dir = dir;
      try {
        task.id = t.at("id").get<std::string>();
        task.app = t.at("app").get<std::string>();
        task.goal = t.at("goal").get<std::string>();
        for (const json& s : t.at("essential_states")) {
          check_state(s, f.string() + ": task " + task.id);
          task.states.push_back({s});
        }
        task.oracle = t.value("oracle", json::array());
      } catch (const json::exception& e) {
        throw Error(f.string() + ": task " + (task.id.empty() ? "?" : task.id) + ": " + e.what());
      }
      if (task.states.empty()) throw Error(f.string() + ": task " + task.id + " has no essential states");
      for (const GuiTask& other : tasks)
        if (other.id == task.id) throw Error(f.string() + ": task id " + task.id + " is used twice");
      tasks.push_back(std::move(task));
    }
  }
  return tasks;
}

TraceVerdict evaluate_trace(const GuiTask& task, const GuiTrace& trace, const ScreenEmbedder& embedder) {
  TraceVerdict v;
  v.matched_step.assign(task.states.size(), -1);
  Matcher m(task, trace, embedder);
  size_t k = 0;
  for (size_t i = 0; i < m.size() && k < task.states.size(); ++i) {
    while (k < task.states.size() && m.matches(task.states[k].spec, i)) v.matched_step[k++] = static_cast<int>(i);
  }
  v.success = k == task.states.size();
  return v;
}

}  // namespace onellm
