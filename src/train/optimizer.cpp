// AdamW (Loshchilov & Hutter: weight decay decoupled from the gradient, as
// torch.optim.AdamW), the learning-rate schedule and global-norm clipping.
#include <cmath>

#include "train/train.h"

namespace onellm {

float learning_rate(const AdamWOptions& o, int64_t step) {
  if (o.warmup_steps > 0 && step < o.warmup_steps)
    return o.lr * static_cast<float>(step + 1) / static_cast<float>(o.warmup_steps);
  const int64_t decay_steps = o.total_steps - 1 - o.warmup_steps;
  if (decay_steps <= 0) return o.lr;
  double progress = static_cast<double>(step - o.warmup_steps) / static_cast<double>(decay_steps);
  if (progress > 1.0) progress = 1.0;
  const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
  return static_cast<float>(o.min_lr + (o.lr - o.min_lr) * cosine);
}

double clip_grad_norm(float* grads, size_t n, float max_norm) {
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += static_cast<double>(grads[i]) * grads[i];
  const double norm = std::sqrt(sum);
  if (max_norm > 0.0f && norm > max_norm) {
    const float scale = static_cast<float>(max_norm / (norm + 1e-6));
    for (size_t i = 0; i < n; ++i) grads[i] *= scale;
  }
  return norm;
}

void adamw_update(const AdamWOptions& o, int64_t step, float lr, float* params, const float* grads, float* m,
                  float* v, const std::vector<ParamTensor>& tensors) {
  const double t = static_cast<double>(step + 1);
  const float bc1 = static_cast<float>(1.0 - std::pow(static_cast<double>(o.beta1), t));
  const float bc2 = static_cast<float>(1.0 - std::pow(static_cast<double>(o.beta2), t));
  const float step_size = lr / bc1;
  const float bc2_sqrt = std::sqrt(bc2);
  for (const ParamTensor& tensor : tensors) {
    // Norm gains are not decayed: pulling them to 0 would shrink activations.
    const float decay = tensor.is_matrix() ? 1.0f - lr * o.weight_decay : 1.0f;
    const size_t end = tensor.offset + tensor.size;
    for (size_t i = tensor.offset; i < end; ++i) {
      const float g = grads[i];
      m[i] = o.beta1 * m[i] + (1.0f - o.beta1) * g;
      v[i] = o.beta2 * v[i] + (1.0f - o.beta2) * g * g;
      const float denom = std::sqrt(v[i]) / bc2_sqrt + o.eps;
      params[i] = params[i] * decay - step_size * m[i] / denom;
    }
  }
}

}  // namespace onellm
