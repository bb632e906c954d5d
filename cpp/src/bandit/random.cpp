// Samplers of trafficsplit/bandit/random.hpp.
#include "trafficsplit/bandit/random.hpp"

#include <cmath>

namespace trafficsplit::bandit {

namespace detail {

Ziggurat::Ziggurat() noexcept {
  constexpr int n = kZigguratLayers;
  constexpr double r = kZigguratR, v = kZigguratV;
  double f = std::exp(-0.5 * r * r);
  x[0] = v / f;  // the base layer (rectangle plus tail) as a wider rectangle
  x[1] = r;
  x[n] = 0;
  for (int i = 2; i < n; ++i) {
    x[i] = std::sqrt(-2 * std::log(v / x[i - 1] + f));
    f = std::exp(-0.5 * x[i] * x[i]);
  }
  for (int i = 0; i < n; ++i) ratio[i] = x[i + 1] / x[i];
  for (int i = 0; i <= n; ++i) density[i] = std::exp(-0.5 * x[i] * x[i]);
}

const Ziggurat kZiggurat;

// The ziggurat after a miss of the rectangle test: the tail, a wedge, or a new try.
double normal_slow(Rng& rng, int i, double u) noexcept {
  const Ziggurat& z = kZiggurat;
  for (;;) {
    if (i == 0) {
      // The tail beyond R (Marsaglia 1964).
      double x, y;
      do {
        x = std::log(rng.uniform_open()) / kZigguratR;
        y = std::log(rng.uniform_open());
      } while (-2 * y < x * x);
      return u < 0 ? x - kZigguratR : kZigguratR - x;
    }
    // A wedge: keep x when a uniform point between the layer's edges lies under the density
    // (Doornik's test f1 + U (f0 - f1) < 1 multiplied through by exp(-x^2 / 2): one exp).
    const double x = u * z.x[i];
    if (z.density[i + 1] + rng.uniform() * (z.density[i] - z.density[i + 1]) <
        std::exp(-0.5 * x * x))
      return x;
    const uint64_t bits = rng.next();
    u = 2 * (static_cast<double>(bits >> 11) * 0x1.0p-53) - 1;
    i = static_cast<int>((bits >> 4) & 0x7F);
    if (std::fabs(u) < z.ratio[i]) return u * z.x[i];
  }
}

// Marsaglia & Tsang's full acceptance test, after the squeeze failed (x2 = x * x).
double gamma_slow(double d, double x2, double v, double u) noexcept {
  return std::log(u) < 0.5 * x2 + d * (1.0 - v + std::log(v)) ? 1.0 : 0.0;
}

}  // namespace detail

GammaSampler::GammaSampler(double shape) noexcept {
  const double a = shape < 1 ? shape + 1 : shape;
  d_ = a - 1.0 / 3.0;
  c_ = 1.0 / std::sqrt(9.0 * d_);
  inv_shape_ = shape < 1 ? 1.0 / shape : 0.0;
}

double Rng::gamma(double shape) noexcept { return GammaSampler(shape)(*this); }

double Rng::beta(double a, double b) noexcept {
  const double x = gamma(a);
  const double y = gamma(b);
  const double sum = x + y;
  return sum > 0 ? x / sum : a / (a + b);  // both underflowed (tiny shapes): the mean
}

double Rng::student_t(double dof) noexcept {
  const double z = normal();
  const double half = 0.5 * dof;
  return z / std::sqrt(gamma(half) / half);
}

}  // namespace trafficsplit::bandit
