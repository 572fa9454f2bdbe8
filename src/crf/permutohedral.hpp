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
// Determinism: each thread splats into the points it owns, adding pixels in pixel order as a
// serial scatter does; blur and slice are per point / per pixel; points are numbered by first
// occurrence in pixel order. So every result is bitwise independent of the thread count.
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

class PermutohedralLattice {
public:
    static constexpr int kMaxDim = 8;  // keys pack d coordinates into 128 bits

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
    // Rows [lo, hi) of the current buffer: the sum over the pixels splatting there of
    // weight * (in[pixel] * scale[pixel]) (scale may be null), added in pixel order as the
    // peer's serial scatter. Threads owning disjoint ranges (owned_points) give the same
    // result as one thread.
    void splat_owned(const float* in, const float* scale, int32_t lo, int32_t hi);
    // Part `part` of `parts` of the points, split at equal vertex counts.
    std::pair<int32_t, int32_t> owned_points(int part, int parts) const;
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
    template <class V, int B>
    SIGHTLINE_INLINE void slice_into(int pixel, V* acc) const {
        constexpr int L = Simd<V>::lanes;
        const int nb = B ? B : channels_ / L, c = channels_;
        const LatticeVertex* v = vertices_.data() + int64_t(pixel) * (d_ + 1);
        const float* values = values_[current_].data();
        for (int b = 0; b < nb; ++b) acc[b] = splat<V>(0.f);
        if (scalar_order_) {
            const V a = splat<V>(alpha_);
            for (int r = 0; r <= d_; ++r) {
                const float* l = values + int64_t(v[r].point) * c;
                const V w = splat<V>(v[r].weight);
                for (int b = 0; b < nb; ++b) acc[b] += w * load<V>(l + L * b) * a;
            }
        } else {
            for (int r = 0; r <= d_; ++r) {
                const float* l = values + int64_t(v[r].point) * c;
                const V w = splat<V>(v[r].weight * alpha_);
                for (int b = 0; b < nb; ++b) acc[b] += w * load<V>(l + L * b);
            }
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
    void number_points(ThreadPool& pool);
    void link_neighbours(ThreadPool& pool);
    void count_hits();

    // Vertex r of a pixel's simplex (its position is pixel * (d+1) + r).
    void vertex_coordinates(int64_t pixel, int r, int32_t* key) const;
    Key pack(const int32_t* key) const;
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
    std::vector<int64_t> hits_;             // M + 1: vertices of the points before, accumulated
    std::vector<float> values_[2];
    int current_ = 0, channels_ = 0, lanes_ = 4;
    bool scalar_order_ = true;
    float alpha_ = 1.f;
};

}  // namespace sightline::detail
