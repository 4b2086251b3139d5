// Private to train/: normal draws that are identical on every platform
// (std::normal_distribution is not).
#pragma once

#include <cmath>
#include <cstdint>
#include <random>

namespace onellm {

class NormalRng {
 public:
  explicit NormalRng(uint64_t seed) : gen_(seed) {}
  double uniform() { return static_cast<double>(gen_() >> 11) * (1.0 / 9007199254740992.0); }
  // Box-Muller; one draw per call keeps the sequence easy to reason about.
  float normal() {
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }

 private:
  std::mt19937_64 gen_;
};

}  // namespace onellm
