// What a GUI agent acts on: a phone seen through its view hierarchy. The
// simulator (apps declared in data files) and the adb backend (a real device
// or emulator) implement the same interface, so the agent cannot tell them
// apart.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/gui_action.h"

namespace onellm {

struct InstalledApp {
  std::string name;     // "Clock": what open_app takes
  std::string package;  // "com.onellm.clock"
  bool operator==(const InstalledApp&) const = default;
};

class GuiEnvironment {
 public:
  virtual ~GuiEnvironment() = default;
  virtual std::string dump_screen() = 0;                // uiautomator XML
  virtual void execute(const DeviceCommand& command) = 0;  // throws Error when the device refuses
  virtual std::string current_activity() = 0;           // "package/.Activity"
  virtual std::vector<InstalledApp> installed_apps() = 0;
};

// --- simulator --------------------------------------------------------------

struct SimTransition;
struct SimApp;

// A phone with the apps of a data directory (one folder per app: app.json
// and one XML template per screen; see docs/architecture.md) and a launcher.
class SimulatedDevice : public GuiEnvironment {
 public:
  // Loads every <dir>/<app>/app.json. Throws Error naming the file at fault.
  explicit SimulatedDevice(const std::string& apps_dir);
  ~SimulatedDevice() override;

  std::string dump_screen() override;
  void execute(const DeviceCommand& command) override;
  std::string current_activity() override;
  std::vector<InstalledApp> installed_apps() override;

  void open_app(const std::string& name);  // by name or package; Error if not installed
  const std::string& current_screen() const { return screen_; }
  const std::string& current_app() const { return app_; }  // package, "" on the launcher
  const nlohmann::json& app_state(const std::string& package) const;

 private:
  struct Rendered;
  SimApp& app(const std::string& package);
  const Rendered& rendered();
  nlohmann::json view_state();  // the app's state plus "device" (installed apps)
  void tap(int x, int y, const char* event);
  void type(int x, int y, const std::string& text);
  void swipe(const DeviceCommand& c);
  void back();
  void go_home();
  bool run_transition(const std::string& event, const std::string& id, int item, const std::string& text);
  void apply_ops(const nlohmann::json& ops, int item, const std::string& text);
  void goto_screen(const std::string& screen);

  std::map<std::string, std::unique_ptr<SimApp>> apps_;  // by package
  std::vector<InstalledApp> installed_;
  std::string app_;     // current package ("" = launcher)
  std::string screen_;  // current screen of the current app
  std::map<std::string, std::vector<std::string>> back_stack_;  // per app
  std::map<std::string, int> scroll_;  // "screen/scroller-id" -> offset in pixels
  std::unique_ptr<Rendered> rendered_;  // cache, dropped on every change
};

// Renders a screen template: {{path}}, {{#each path}}..{{/each}} with
// {{.field}} and {{@index}}, {{#if cond}}..{{else}}..{{/if}} where cond is
// `path`, `path=value` or `path!=value`. Paths are dotted; a segment `@p`
// is replaced by the value at path p; `path.length` is an array's size.
// `vars` holds $text and $index while a transition runs. Values are XML-
// escaped when `xml` is set. Throws Error on unbalanced or unknown tags.
std::string render_sim_template(std::string_view tpl, const nlohmann::json& state,
                                const std::map<std::string, nlohmann::json>& vars, bool xml);

// --- adb --------------------------------------------------------------------

// Pure parts of the adb backend, tested against recorded adb output.
std::vector<std::string> adb_command_args(const DeviceCommand& c, const std::string& package);
std::string adb_escape_input_text(const std::string& text);  // for `input text`
std::string parse_adb_activity(const std::string& dumpsys_output);  // "package/.Activity" or Error
std::vector<std::string> parse_adb_packages(const std::string& pm_list_output);
std::string parse_adb_dump_path(const std::string& uiautomator_output);  // or Error

class AdbEnvironment : public GuiEnvironment {
 public:
  // Runs `adb [-s serial] ARGS...` and returns stdout; throws Error on failure.
  using Runner = std::function<std::string(const std::vector<std::string>& args)>;
  // Default runner: the adb on PATH (Error if there is none). `app_packages`
  // maps open_app names to packages; a name containing '.' is a package.
  explicit AdbEnvironment(std::string serial = "", std::map<std::string, std::string> app_packages = {},
                          Runner runner = nullptr);
  static bool adb_available();

  std::string dump_screen() override;
  void execute(const DeviceCommand& command) override;
  std::string current_activity() override;
  std::vector<InstalledApp> installed_apps() override;

 private:
  std::string adb(std::vector<std::string> args);
  std::string serial_;
  std::map<std::string, std::string> app_packages_;
  Runner runner_;
};

}  // namespace onellm
