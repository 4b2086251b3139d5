// onellm command line: dispatches to one subcommand.
#include <cstdio>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  std::fprintf(stderr, "onellm: no subcommands yet\n");
  return 2;
}
