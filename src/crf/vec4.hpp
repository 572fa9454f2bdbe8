// Float vectors for the dense CRF's label loops (GCC/Clang vector extensions): 4 lanes (SSE
// on x86-64, NEON on ARM) everywhere, 8 lanes in functions compiled for AVX2 and chosen at run
// time. Every lane does the same operations in the same order in both widths, so results do
// not depend on the width; only horizontal sums need care (sum_lanes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <vector>

// 8-lane vectors only cross function boundaries inside AVX2 code: the helpers are inlined
// into the AVX2 kernels, so -Wpsabi's note on the ABI of 8-lane calls does not apply (it
// is silenced for the files of the crf area that include this private header).
#pragma GCC diagnostic ignored "-Wpsabi"
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SIGHTLINE_TARGET_AVX2 __attribute__((target("avx2")))  // no "fma": same rounding as SSE
#else
#define SIGHTLINE_TARGET_AVX2
#endif
#define SIGHTLINE_INLINE __attribute__((always_inline)) inline

namespace sightline::detail {

typedef float Vec4 __attribute__((vector_size(16)));
typedef float Vec8 __attribute__((vector_size(32)));

// Code inlined into the AVX2 kernels must reach vector operations through free function
// templates only: GCC 12 lowers vectors in a member function (of a class template or a
// lambda) for the baseline target before inlining, building each broadcast lane by lane
// (an insert per lane), which cost more than the arithmetic of the exp and slice loops. For
// the same reason broadcasts are shuffles rather than initialisers {x, x, ...}.
template <class V>
struct Simd;
template <>
struct Simd<Vec4> {
    static constexpr int lanes = 4;
    typedef float Unaligned __attribute__((vector_size(16), aligned(4)));
    typedef int32_t Int __attribute__((vector_size(16)));
    typedef uint32_t UInt __attribute__((vector_size(16)));
};
template <>
struct Simd<Vec8> {
    static constexpr int lanes = 8;
    typedef float Unaligned __attribute__((vector_size(32), aligned(4)));
    typedef int32_t Int __attribute__((vector_size(32)));
    typedef uint32_t UInt __attribute__((vector_size(32)));
};

template <class V>
SIGHTLINE_INLINE V load(const float* p) { return *reinterpret_cast<const typename Simd<V>::Unaligned*>(p); }
template <class V>
SIGHTLINE_INLINE void store(float* p, V v) { *reinterpret_cast<typename Simd<V>::Unaligned*>(p) = v; }
template <class V>
SIGHTLINE_INLINE V splat(float x) {
    const V v = {x};
    if constexpr (sizeof(V) == 16) return __builtin_shufflevector(v, v, 0, 0, 0, 0);
    else return __builtin_shufflevector(v, v, 0, 0, 0, 0, 0, 0, 0, 0);
}

// Short names for the 4-lane code.
inline Vec4 load4(const float* p) { return load<Vec4>(p); }
inline void store4(float* p, Vec4 v) { store<Vec4>(p, v); }
inline Vec4 broadcast(float x) { return splat<Vec4>(x); }

// acc += v four lanes at a time, in memory order: the same order for either width.
SIGHTLINE_INLINE void add_quarters(Vec4& acc, Vec4 v) { acc += v; }
SIGHTLINE_INLINE void add_quarters(Vec4& acc, Vec8 v) {
    acc += __builtin_shufflevector(v, v, 0, 1, 2, 3);
    acc += __builtin_shufflevector(v, v, 4, 5, 6, 7);
}

// exp(x) for x <= 0 with Cephes' expf polynomial (max error 2 ulp), branch-free; results
// below 2^-126 (x < -87.3, also x = -1e30 used for padding) are 0. A libm call per value
// would cost as much as the lattice filtering for 21 labels.
template <class V>
SIGHTLINE_INLINE V exp_nonpositive(V x) {
    typedef typename Simd<V>::Int I;
    typedef typename Simd<V>::UInt U;
    // Adding 1.5 * 2^23 rounds x / ln 2 to an integer n held in the low mantissa bits.
    const V shifted = x * splat<V>(1.44269504088896341f) + splat<V>(12582912.f);
    const V n = shifted - splat<V>(12582912.f);
    V r = x - n * splat<V>(0.693359375f);  // ln 2 in two parts, so r is exact
    r = r - n * splat<V>(-2.12194440e-4f);
    V p = splat<V>(1.9875691500e-4f);
    p = p * r + splat<V>(1.3981999507e-3f);
    p = p * r + splat<V>(8.3334519073e-3f);
    p = p * r + splat<V>(4.1665795894e-2f);
    p = p * r + splat<V>(1.6666665459e-1f);
    p = p * r + splat<V>(5.0000001201e-1f);
    const V y = p * (r * r) + r + splat<V>(1.f);
    // A cast between vector types of the same size reinterprets the bits.
    const I ni = (I)shifted - 0x4B400000;    // minus the bits of 1.5 * 2^23
    const V scale = (V)((U)(ni + 127) << 23);  // 2^n
    return (V)((I)(y * scale) & (ni >= -126));
}

// Rows of label values (K padded, 96 bytes for 21 labels) are read whole; in a buffer aligned
// to a cache line each such row touches 2 lines (malloc's 16-byte alignment makes every
// other row touch 3).
template <class T>
struct CacheAligned {
    using value_type = T;
    static constexpr std::align_val_t kAlign{64};
    CacheAligned() = default;
    template <class U>
    CacheAligned(const CacheAligned<U>&) {}
    T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlign)); }
    void deallocate(T* p, size_t) { ::operator delete(p, kAlign); }
    template <class U>
    bool operator==(const CacheAligned<U>&) const { return true; }
    template <class U>
    bool operator!=(const CacheAligned<U>&) const { return false; }
};
using AlignedFloats = std::vector<float, CacheAligned<float>>;

constexpr int kMaxBlocks = 64;  // rows of up to 256 floats in 4-lane blocks

// Calls fn(std::integral_constant<int, B>) with B = blocks for 1..8 blocks (loops fully
// unrolled, accumulators in registers) and B = 0 (count known at run time) above.
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

// The vector width of the next inference: 8 when the CPU has AVX2 (x86-64), else 4. Tests
// set 4 to compare both widths.
inline int& vector_lanes() {
    static int lanes = [] {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2")) return 8;
#endif
        return 4;
    }();
    return lanes;
}

}  // namespace sightline::detail
