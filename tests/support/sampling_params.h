// Sampling settings for sampler tests: every truncation off.
#pragma once

#include "engine/sampler.h"

namespace onellm {

inline SamplingParams filters_off(float temperature, uint64_t seed = 1234) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = seed;
  return p;
}

}  // namespace onellm
