// 4-float vectors for the dense CRF's label loops (GCC/Clang vector extensions: SSE on
// x86-64, NEON on ARM), and a dispatcher that compiles a loop for a fixed number of blocks.
#pragma once

#include <cstdint>
#include <type_traits>

namespace sightline::detail {

typedef float Vec4 __attribute__((vector_size(16)));
typedef float Vec4u __attribute__((vector_size(16), aligned(4)));  // unaligned access

inline Vec4 load4(const float* p) { return *reinterpret_cast<const Vec4u*>(p); }
inline void store4(float* p, Vec4 v) { *reinterpret_cast<Vec4u*>(p) = v; }
inline Vec4 broadcast(float x) { return Vec4{x, x, x, x}; }

typedef int32_t Vec4i __attribute__((vector_size(16)));
typedef uint32_t Vec4ui __attribute__((vector_size(16)));

// exp(x) for x <= 0 with Cephes' expf polynomial (max error 2 ulp), branch-free; results
// below 2^-126 (x < -87.3, also x = -1e30 used for padding) are 0. A libm call per value
// would cost as much as the lattice filtering for 21 labels.
inline Vec4 exp_nonpositive(Vec4 x) {
    // Adding 1.5 * 2^23 rounds x / ln 2 to an integer n held in the low mantissa bits.
    const Vec4 shifted = x * broadcast(1.44269504088896341f) + broadcast(12582912.f);
    const Vec4 n = shifted - broadcast(12582912.f);
    Vec4 r = x - n * broadcast(0.693359375f);  // ln 2 in two parts, so r is exact
    r = r - n * broadcast(-2.12194440e-4f);
    Vec4 p = broadcast(1.9875691500e-4f);
    p = p * r + broadcast(1.3981999507e-3f);
    p = p * r + broadcast(8.3334519073e-3f);
    p = p * r + broadcast(4.1665795894e-2f);
    p = p * r + broadcast(1.6666665459e-1f);
    p = p * r + broadcast(5.0000001201e-1f);
    const Vec4 y = p * (r * r) + r + broadcast(1.f);
    // A cast between vector types of the same size reinterprets the bits.
    const Vec4i ni = (Vec4i)shifted - 0x4B400000;  // minus the bits of 1.5 * 2^23
    const Vec4 scale = (Vec4)((Vec4ui)(ni + 127) << 23);  // 2^n
    return (Vec4)((Vec4i)(y * scale) & (ni >= -126));
}

constexpr int kMaxBlocks = 64;  // rows of up to 256 floats

// Calls fn(std::integral_constant<int, B>) with B = blocks for 1..8 blocks (up to 32 labels,
// loops fully unrolled, accumulators in registers) and B = 0 (count known at run time) above.
template <class Fn>
void with_blocks(int blocks, Fn&& fn) {
    switch (blocks) {
        case 1: fn(std::integral_constant<int, 1>{}); break;
        case 2: fn(std::integral_constant<int, 2>{}); break;
        case 3: fn(std::integral_constant<int, 3>{}); break;
        case 4: fn(std::integral_constant<int, 4>{}); break;
        case 5: fn(std::integral_constant<int, 5>{}); break;
        case 6: fn(std::integral_constant<int, 6>{}); break;
        case 7: fn(std::integral_constant<int, 7>{}); break;
        case 8: fn(std::integral_constant<int, 8>{}); break;
        default: fn(std::integral_constant<int, 0>{}); break;
    }
}

}  // namespace sightline::detail
