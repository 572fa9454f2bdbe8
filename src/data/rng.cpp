// Seeded random numbers: xoshiro256** (Blackman & Vigna 2018) seeded by SplitMix64.
#include <cmath>

#include "sightline/data.hpp"

namespace sightline {

namespace {

uint64_t splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

constexpr double kPi = 3.14159265358979323846;

}  // namespace

uint64_t mix_seed(uint64_t a, uint64_t b) {
    uint64_t state = a ^ (b * 0xd1b54a32d192ed03ULL + 0x8cb92ba72f3d8dd7ULL);
    splitmix64(state);
    return splitmix64(state);
}

Rng::Rng(uint64_t seed) {
    uint64_t state = seed;
    for (auto& word : s_) word = splitmix64(state);
}

uint64_t Rng::next() {
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

// The top 53 bits as a double in [0, 1).
double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

double Rng::uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

int Rng::uniform_int(int lo, int hi) {
    if (hi <= lo) return lo;
    const uint64_t range = static_cast<uint64_t>(hi - lo) + 1;
    return lo + static_cast<int>(next() % range);  // bias < 2^-40 for our small ranges
}

bool Rng::bernoulli(double p) { return uniform() < p; }

double Rng::normal() {
    double u1 = uniform();
    while (u1 <= 0.0) u1 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * uniform());
}

double Rng::gamma(double shape) {
    if (shape < 1.0) {
        // Boost to shape + 1 and scale by U^(1/shape) (Marsaglia & Tsang, section 6).
        double u = uniform();
        while (u <= 0.0) u = uniform();
        return gamma(shape + 1.0) * std::pow(u, 1.0 / shape);
    }
    const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
    for (;;) {
        double x = normal(), v = 1.0 + c * x;
        if (v <= 0.0) continue;
        v = v * v * v;
        double u = uniform();
        if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
        if (u > 0.0 && std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
    }
}

double Rng::beta(double a, double b) {
    double x = gamma(a), y = gamma(b);
    return (x + y) > 0.0 ? x / (x + y) : 0.5;
}

Rng Rng::fork(uint64_t stream) const { return Rng(mix_seed(s_[0] ^ rotl(s_[2], 23), stream)); }

}  // namespace sightline
