// A seeded, portable random generator for the bandit policies (docs/bandits.md, "Randomness").
//
// Every replica that holds the same policy state and seed must compute the same weights, so
// nothing here uses std:: distributions (their algorithms differ between standard libraries).
// The bits come from xoshiro256** (Blackman & Vigna 2018) seeded through splitmix64; the
// normal, gamma, beta and Student-t samplers are written out below. They use only IEEE
// arithmetic, sqrt (correctly rounded everywhere) and, on rare paths, std::exp / std::log.
#pragma once

#include <cmath>
#include <cstdint>

namespace trafficsplit::bandit {

// splitmix64 (Steele, Lea & Flood 2014): advances `state` and returns the next output.
inline uint64_t splitmix64(uint64_t& state) noexcept {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// The seed of one epoch: splitmix64 of (seed XOR splitmix64 of the epoch number), so that
// consecutive epochs get unrelated streams and every replica derives the same one.
inline uint64_t epoch_seed(uint64_t seed, uint64_t epoch) noexcept {
  uint64_t e = epoch;
  uint64_t s = seed ^ splitmix64(e);
  return splitmix64(s);
}

class Rng {
 public:
  // The four words of state are the first four splitmix64 outputs from `seed`.
  explicit Rng(uint64_t seed) noexcept {
    uint64_t s = seed;
    for (auto& w : s_) w = splitmix64(s);
  }

  // xoshiro256**
  uint64_t next() noexcept {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform on [0, 1): the top 53 bits.
  double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Uniform on (0, 1): the top 52 bits plus one half.
  double uniform_open() noexcept { return (static_cast<double>(next() >> 12) + 0.5) * 0x1.0p-52; }

  // Standard normal by the ziggurat of Marsaglia & Tsang (2000) with 128 layers and the
  // independent layer index of Doornik (2005).
  inline double normal() noexcept;
  // Gamma(shape, 1) by Marsaglia & Tsang (2000); shape < 1 via Gamma(shape + 1) * U^(1/shape).
  double gamma(double shape) noexcept;
  // Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b).
  double beta(double a, double b) noexcept;
  // Student's t with `dof` degrees of freedom: Z / sqrt(Gamma(dof/2) / (dof/2)).
  double student_t(double dof) noexcept;

 private:
  static uint64_t rotl(uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// Marsaglia & Tsang's constants for one shape, computed once and reused for many draws.
class GammaSampler {
 public:
  explicit GammaSampler(double shape) noexcept;
  inline double operator()(Rng& rng) const noexcept;

 private:
  double d_;
  double c_;
  double inv_shape_;  // 1 / shape when shape < 1, else 0
};

namespace detail {

// Doornik (2005), "An improved ziggurat method to generate normal random samples": 128 layers,
// right edge of the base layer R and common layer area V. The tables are filled once, at load.
inline constexpr int kZigguratLayers = 128;
inline constexpr double kZigguratR = 3.442619855899;
inline constexpr double kZigguratV = 9.91256303526217e-3;
struct Ziggurat {
  double x[kZigguratLayers + 1];
  double ratio[kZigguratLayers];
  double density[kZigguratLayers + 1];  // exp(-x^2 / 2) at each layer's edge
  Ziggurat() noexcept;
};
extern const Ziggurat kZiggurat;
double normal_slow(Rng& rng, int layer, double u) noexcept;
double gamma_slow(double d, double x, double v, double u) noexcept;

// Marsaglia & Tsang's full test, log(u) < x^2/2 + d (1 - v + log v) with v = (1 + t)^3,
// first without logarithms: log(u) <= u - 1, and for |t| < 1/2
// log(1 + t) >= t - t^2/2 + t^3/3 - t^4/4 - |t|^5 / (5 (1 - |t|)) (the series' remainder
// bounded by a geometric one). For large shapes the squeeze above rejects ~10 % of draws
// that this accepts at the cost of a few multiplications; the rest go to gamma_slow.
inline bool gamma_accept(double d, double t, double x2, double v, double u) noexcept {
  const double a = std::fabs(t);
  if (a < 0.5) {
    const double t2 = t * t;
    const double log1p_low =
        t - 0.5 * t2 + t2 * t / 3.0 - 0.25 * t2 * t2 - t2 * t2 * a / (5.0 * (1.0 - a));
    if (u - 1.0 < 0.5 * x2 + d * (1.0 - v + 3.0 * log1p_low)) return true;
  }
  return gamma_slow(d, x2, v, u) != 0;
}

}  // namespace detail

double Rng::normal() noexcept {
  const detail::Ziggurat& z = detail::kZiggurat;
  const uint64_t bits = next();
  // Top 53 bits for the abscissa, bits 4-10 for the layer: disjoint, so independent.
  const double u = 2 * (static_cast<double>(bits >> 11) * 0x1.0p-53) - 1;
  const int i = static_cast<int>((bits >> 4) & 0x7F);
  if (std::fabs(u) < z.ratio[i]) return u * z.x[i];
  return detail::normal_slow(*this, i, u);
}

double GammaSampler::operator()(Rng& rng) const noexcept {
  double g;
  for (;;) {
    double x, v;
    do {
      x = rng.normal();
      v = 1.0 + c_ * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = rng.uniform_open();
    const double x2 = x * x;
    if (u < 1.0 - 0.0331 * x2 * x2 || detail::gamma_accept(d_, c_ * x, x2, v, u)) {
      g = d_ * v;
      break;
    }
  }
  if (inv_shape_ != 0) g *= std::exp(std::log(rng.uniform_open()) * inv_shape_);
  return g;
}

}  // namespace trafficsplit::bandit
