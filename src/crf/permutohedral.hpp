// Permutohedral lattice (Adams, Baek & Davis, "Fast High-Dimensional Filtering Using the
// Permutohedral Lattice", Eurographics 2010): approximate Gaussian filtering
//   out_i ~ sum_j exp(-|f_i - f_j|^2 / 2) in_j
// in O(N d^2) to build and O(N c d) per filtering, for N pixels with d-dimensional features
// (already divided by the kernel's standard deviations) and c channels.
//
// Conventions follow Kraehenbuehl's densecrf as shipped in pydensecrf (notes/wsss.md 5.4), so
// that results agree to float rounding: float32 everywhere, elevation scale
// sqrt(2/3)(d+1)/sqrt((k+1)(k+2)), nearest remainder-0 point rounded half to even, blur
// [0.5, 1, 0.5] along axes 0..d, slice scaled by alpha = 1 / (1 + 2^-d).
//
// Determinism: the splat adds each point's contributions in pixel order, as a serial scatter
// does (see splat_part); blur and slice are per point / per pixel; points are numbered by
// first occurrence in pixel order. So every result is bitwise independent of the thread count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "crf/vec4.hpp"

namespace sightline::detail {

class ThreadPool;

// A simplex vertex a pixel splats to and slices from, with its barycentric weight.
struct LatticeVertex {
    int32_t point;
    float weight;
};

// A pixel's contribution to a point (the transpose of LatticeVertex).
struct LatticeSource {
    int32_t pixel;
    float weight;
};

class PermutohedralLattice {
public:
    static constexpr int kMaxDim = 8;  // keys pack d coordinates into 128 bits
    static constexpr int64_t kTailGrain = 64;  // tails per parallel_for block of splat_tails

    // features: pixels x dim floats, row-major. Buffers are kept for the next build.
    void build(const float* features, int pixels, int dim, ThreadPool& pool);

    int dim() const { return d_; }
    int pixels() const { return n_; }
    int points() const { return m_; }  // M, at most pixels * (dim + 1)

    // out = slice(blur(splat(in))), in and out pixels x channels, row-major, not aliased.
    // channels: 1 or a multiple of 4. reverse blurs the axes in the opposite order: the
    // transposed operator.
    void filter(const float* in, float* out, int channels, ThreadPool& pool, bool reverse = false);

    // ---- stages, for callers that fuse their per-pixel work into splat and slice ----
    // Sizes the two value buffers ((points + 1) x channels; row `points` is a zero row that
    // stands for every missing blur neighbour) and selects the first one. channels: 1 or a
    // multiple of `lanes` (4 or 8: the vector width; rows padded with zeros); labels: the
    // unpadded count, which selects the peer's rounding order of the slice.
    void prepare_values(int channels, int labels, int lanes);
    // The splat: row m of the current buffer becomes the sum over the pixels splatting to
    // point m of weight * (in[pixel] * scale[pixel]) (scale may be null), added in pixel
    // order as the peer's serial scatter, whatever the split of the work. The pixels are cut
    // into splat_parts() shares at build (as many as the pool's threads); a point belongs to
    // the share of its first pixel, so each share owns a range of points. Phase 1:
    // splat_part(p) scatters share p's pixels into the points p owns (parts may run at the
    // same time, each reading only its pixels). Phase 2, after every part: splat_tails adds
    // the later shares' contributions to the points that have some, in pixel order, for
    // tails [begin, end) of splat_tail_count() (any split).
    int splat_parts() const { return static_cast<int>(share_pixel_.size()) - 1; }
    void splat_part(const float* in, const float* scale, int part);
    int64_t splat_tail_count() const { return static_cast<int64_t>(tail_point_.size()); }
    void splat_tails(const float* in, const float* scale, int64_t begin, int64_t end);
    // Rows [begin, end) of the other buffer: one [0.5, 1, 0.5] blur step along `axis`.
    void blur_rows(int axis, int64_t begin, int64_t end);
    // After all rows of a blur step: the blurred buffer becomes the current one.
    void swap_values() { current_ ^= 1; }
    // out[0..channels) = alpha * sum_r weight_r * values[point_r].
    void slice_pixel(int pixel, float* out) const;
    // The same into B vectors V (Vec4 or Vec8, the width given to prepare_values; B = 0:
    // known at run time), inline for callers that fuse their per-pixel update. The peer
    // scales each term as (w * value) * alpha for 1-2 labels and as (w * alpha) * value (its
    // SSE path) for more.
    // D: the lattice's dimension if known at compile time (loops unrolled), else 0.
    template <class V, int B, int D = 0>
    SIGHTLINE_INLINE void slice_into(int pixel, V* acc) const {
        constexpr int L = Simd<V>::lanes;
        const int nb = B ? B : channels_ / L, c = B ? L * B : channels_, d = D ? D : d_;
        const LatticeVertex* v = vertices_.data() + int64_t(pixel) * (d + 1);
        const float* values = values_[current_].data();
        for (int b = 0; b < nb; ++b) acc[b] = splat<V>(0.f);
        if (scalar_order_) {
            const V a = splat<V>(alpha_);
            for (int r = 0; r <= d; ++r) {
                const float* l = values + int64_t(v[r].point) * c;
                const V w = splat<V>(v[r].weight);
                for (int b = 0; b < nb; ++b) acc[b] += w * load<V>(l + L * b) * a;
            }
        } else {
            for (int r = 0; r <= d; ++r) {
                const float* l = values + int64_t(v[r].point) * c;
                const V w = splat<V>(v[r].weight * alpha_);
                for (int b = 0; b < nb; ++b) acc[b] += w * load<V>(l + L * b);
            }
        }
    }

    // Hints the cache to fetch the rows slice_into(pixel) will read (a bilateral pixel's
    // points depend on its colour, so the hardware cannot predict them).
    SIGHTLINE_INLINE void prefetch_slice(int pixel) const {
        const LatticeVertex* v = vertices_.data() + int64_t(pixel) * (d_ + 1);
        const float* values = values_[current_].data();
        for (int r = 0; r <= d_; ++r) {
            const float* row = values + int64_t(v[r].point) * channels_;
            __builtin_prefetch(row);
            __builtin_prefetch(row + channels_ - 1);
        }
    }

    // ---- inspection, for tests ----
    const LatticeVertex* vertices(int pixel) const { return vertices_.data() + int64_t(pixel) * (d_ + 1); }
    // The d+1 coordinates (summing to zero) of a lattice point.
    std::vector<int> point_key(int point) const;
    // The blur neighbours of a point along an axis (points() if missing).
    std::pair<int, int> neighbours(int point, int axis) const;

private:
    using Key = unsigned __int128;  // a point's first d coordinates, 128 / d bits each (<= 32)
    struct Slot {
        uint32_t hash;
        int32_t entry;  // index into the table's entries, -1 when empty
    };
    struct Table {
        std::vector<Slot> slots;
        std::vector<Key> keys;       // per entry
        std::vector<int32_t> first;  // per entry: first vertex position with the key
        std::vector<int32_t> point;  // per entry: lattice point index (after numbering)
        size_t count() const { return keys.size(); }
        int32_t find_or_insert(Key key, uint32_t hash, int32_t position);  // first position
        int32_t find(Key key, uint32_t hash) const;                         // entry or -1
        void grow();
        void clear();
    };

    void elevate_pixels(const float* features, ThreadPool& pool);
    template <int D>  // 0: d_ known at run time
    bool elevate_range(const float* features, const float* scale, float limit, int64_t begin, int64_t end);
    void insert_vertices(ThreadPool& pool);
    template <int D>  // 0: d_ known at run time
    void insert_partition(int t);
    void number_points(ThreadPool& pool);
    void link_neighbours(ThreadPool& pool);
    template <int D>
    void link_range(int64_t begin, int64_t end);
    void split_shares(ThreadPool& pool);

    // Vertex r of a pixel's simplex (its position is pixel * (d+1) + r).
    template <int D = 0>
    void vertex_coordinates(int64_t pixel, int r, int32_t* key) const;
    template <int D = 0>
    Key pack(const int32_t* key) const;
    template <int D = 0>
    Key vertex_key(int64_t pixel, int r) const;
    static uint32_t hash_key(Key key);
    int partition(uint32_t hash) const;
    int32_t find_point(Key key) const;  // lattice point index, or points() when missing

    int d_ = 0, n_ = 0, m_ = 0;
    int partitions_ = 1, key_bits_ = 32;
    // Per pixel (d+1 entries): the remainder-0 point and the rank of each coordinate.
    std::vector<int32_t> rem0_;
    std::vector<uint8_t> rank_;
    std::vector<uint8_t> same_simplex_;  // per pixel: same simplex as the pixel before
    // Per vertex position: hash of its key, first position with the same key.
    std::vector<uint32_t> hash_;
    std::vector<int32_t> first_;
    std::vector<Table> tables_;  // one per partition of the hash values
    std::vector<LatticeVertex> vertices_;   // pixels x (d+1)
    std::vector<int32_t> representative_;   // per point: its first vertex position
    std::vector<int32_t> neighbours_;       // (axis * M + point) * 2 + {0: minus, 1: plus}
    std::vector<int64_t> chunk_base_;
    // Splat shares (parts + 1 entries each): the first pixel of each share and the first point
    // it owns. Tails: the points with contributions from shares after their owner's, and those
    // contributions (tail_sources_[tail_begin_[j], tail_begin_[j+1]) for tail j) in pixel order.
    std::vector<int32_t> share_pixel_, share_point_;
    std::vector<int32_t> tail_point_;
    std::vector<int64_t> tail_begin_;
    std::vector<LatticeSource> tail_sources_;
    std::vector<std::vector<int64_t>> share_counts_;
    AlignedFloats values_[2];
    int current_ = 0, channels_ = 0, lanes_ = 4;
    bool scalar_order_ = true;
    float alpha_ = 1.f;
};

}  // namespace sightline::detail
