// The adb backend: the same GuiEnvironment on a real device or emulator.
// Command construction and output parsing are plain functions (tested
// against recorded adb output); only AdbEnvironment::adb runs a process.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "agent/gui_environment.h"
#include "base/error.h"

namespace onellm {

std::string adb_escape_input_text(const std::string& text) {
  // `input text` runs through the device shell and treats %s as a space.
  std::string out;
  for (char c : text) {
    if (c == ' ') {
      out += "%s";
    } else if (c == '\n' || c == '\r' || c == '\t') {
      throw Error("adb input text: control characters cannot be typed (use keyboard_enter)");
    } else if (std::string_view("\\\"'`$&|;<>()[]{}*?!~#%^").find(c) != std::string_view::npos) {
      out += '\\';
      out += c;
    } else {
      out += c;
    }
  }
  return out;
}

std::vector<std::string> adb_command_args(const DeviceCommand& c, const std::string& package) {
  auto n = [](int v) { return std::to_string(v); };
  switch (c.kind) {
    case DeviceCommand::kTap: return {"shell", "input", "tap", n(c.x), n(c.y)};
    // A long press is a swipe that does not move.
    case DeviceCommand::kLongPress:
      return {"shell", "input", "swipe", n(c.x), n(c.y), n(c.x), n(c.y), n(c.duration_ms > 0 ? c.duration_ms : 1000)};
    case DeviceCommand::kType: return {"shell", "input", "text", adb_escape_input_text(c.text)};
    case DeviceCommand::kSwipe:
      return {"shell", "input", "swipe", n(c.x), n(c.y), n(c.x2), n(c.y2), n(c.duration_ms > 0 ? c.duration_ms : 400)};
    case DeviceCommand::kBack: return {"shell", "input", "keyevent", "KEYCODE_BACK"};
    case DeviceCommand::kHome: return {"shell", "input", "keyevent", "KEYCODE_HOME"};
    case DeviceCommand::kEnter: return {"shell", "input", "keyevent", "KEYCODE_ENTER"};
    case DeviceCommand::kOpenApp:
      if (package.empty()) throw Error("open_app: no package known for '" + c.text + "'");
      return {"shell", "monkey", "-p", package, "-c", "android.intent.category.LAUNCHER", "1"};
    case DeviceCommand::kNone: return {};
  }
  return {};
}

std::string parse_adb_activity(const std::string& out) {
  // `dumpsys activity activities`: "mResumedActivity: ActivityRecord{a1b2 u0 com.pkg/.Main t12}"
  // (Android 10+ also prints "topResumedActivity=ActivityRecord{...}").
  for (const char* key : {"topResumedActivity", "mResumedActivity", "ResumedActivity", "mFocusedApp"}) {
    size_t k = out.find(key);
    if (k == std::string::npos) continue;
    size_t rec = out.find("ActivityRecord{", k);
    size_t eol = out.find('\n', k);
    if (rec == std::string::npos || (eol != std::string::npos && rec > eol)) continue;
    size_t close = out.find('}', rec);
    std::istringstream fields(out.substr(rec + 15, close - rec - 15));
    std::string f;
    while (fields >> f)
      if (f.find('/') != std::string::npos) return f;
  }
  throw Error("adb: no resumed activity in dumpsys output");
}

std::vector<std::string> parse_adb_packages(const std::string& out) {
  std::vector<std::string> packages;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("package:", 0) != 0) continue;
    std::string p = line.substr(8);
    // `pm list packages -f` prints "package:/data/app/.../base.apk=com.pkg".
    if (size_t eq = p.rfind('='); eq != std::string::npos) p = p.substr(eq + 1);
    if (!p.empty()) packages.push_back(p);
  }
  return packages;
}

std::string parse_adb_dump_path(const std::string& out) {
  // "UI hierchary dumped to: /sdcard/window_dump.xml" (sic, Android's spelling)
  size_t k = out.find("dumped to:");
  if (k == std::string::npos) {
    std::string first = out.substr(0, out.find('\n'));
    throw Error("adb uiautomator dump failed: " + (first.empty() ? std::string("no output") : first));
  }
  std::string path = out.substr(k + 10);
  path.erase(0, path.find_first_not_of(" \t"));
  path.erase(path.find_last_not_of(" \t\r\n") + 1);
  return path;
}

namespace {

std::string run_process(const std::vector<std::string>& argv) {
  int pipe_fd[2];
  if (pipe(pipe_fd) != 0) throw Error("adb: pipe failed");
  pid_t pid = fork();
  if (pid < 0) throw Error("adb: fork failed");
  if (pid == 0) {
    dup2(pipe_fd[1], 1);
    close(pipe_fd[0]);
    close(pipe_fd[1]);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(pipe_fd[1]);
  std::string out;
  std::array<char, 4096> buf;
  ssize_t n;
  while ((n = read(pipe_fd[0], buf.data(), buf.size())) > 0) out.append(buf.data(), static_cast<size_t>(n));
  close(pipe_fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw Error("adb " + (argv.size() > 1 ? argv[1] : std::string()) + " failed (exit " +
                std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + "): " + out.substr(0, 200));
  return out;
}

}  // namespace

bool AdbEnvironment::adb_available() {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "");
  std::string d;
  while (std::getline(dirs, d, ':'))
    if (!d.empty() && access((d + "/adb").c_str(), X_OK) == 0) return true;
  return false;
}

AdbEnvironment::AdbEnvironment(std::string serial, std::map<std::string, std::string> app_packages, Runner runner)
    : serial_(std::move(serial)), app_packages_(std::move(app_packages)), runner_(std::move(runner)) {
  if (!runner_) {
    if (!adb_available()) throw Error("adb is not on PATH (install android-sdk-platform-tools)");
    runner_ = [](const std::vector<std::string>& args) {
      std::vector<std::string> argv = {"adb"};
      argv.insert(argv.end(), args.begin(), args.end());
      return run_process(argv);
    };
  }
}

std::string AdbEnvironment::adb(std::vector<std::string> args) {
  if (!serial_.empty()) args.insert(args.begin(), {"-s", serial_});
  return runner_(args);
}

std::string AdbEnvironment::dump_screen() {
  const std::string path = parse_adb_dump_path(adb({"shell", "uiautomator", "dump", "/sdcard/window_dump.xml"}));
  return adb({"exec-out", "cat", path});
}

void AdbEnvironment::execute(const DeviceCommand& c) {
  std::string package;
  if (c.kind == DeviceCommand::kOpenApp) {
    auto it = app_packages_.find(c.text);
    package = it != app_packages_.end() ? it->second : c.text.find('.') != std::string::npos ? c.text : "";
  }
  if (c.kind == DeviceCommand::kType) adb({"shell", "input", "tap", std::to_string(c.x), std::to_string(c.y)});
  std::vector<std::string> args = adb_command_args(c, package);
  if (!args.empty()) adb(args);
}

std::string AdbEnvironment::current_activity() {
  return parse_adb_activity(adb({"shell", "dumpsys", "activity", "activities"}));
}

std::vector<InstalledApp> AdbEnvironment::installed_apps() {
  std::vector<InstalledApp> apps;
  for (const std::string& p : parse_adb_packages(adb({"shell", "pm", "list", "packages", "-3"}))) {
    std::string name = p;
    for (const auto& [n, pkg] : app_packages_)
      if (pkg == p) name = n;
    apps.push_back({name, p});
  }
  return apps;
}

}  // namespace onellm
