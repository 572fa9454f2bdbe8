// Permutohedral lattice: build (elevate, hash, number, link, transpose) and filtering.
#include "crf/permutohedral.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>

#include <fmt/format.h>

#include "crf/thread_pool.hpp"
#include "crf/vec4.hpp"
#include "sightline/core.hpp"


namespace sightline::detail {
namespace {

constexpr int64_t kChunk = 1 << 15;  // fixed blocks, so numbering does not depend on threads

// splitmix64's finaliser: the slot (low bits) and partition (high bits) both need mixing.
inline uint64_t mix(uint64_t h) {
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}

}  // namespace

// ---- keys -----------------------------------------------------------------------------------

// Vertex r of pixel i's simplex: the remainder-0 point plus the canonical offset of each
// coordinate's rank (Adams et al. 2010, section 3.1). D: the dimension when known at compile
// time (the image CRF's 2 and 5: loops unrolled, constant shifts), 0 = d_.
template <int D>
inline void PermutohedralLattice::vertex_coordinates(int64_t pixel, int r, int32_t* key) const {
    const int d = D ? D : d_, d1 = d + 1;
    const int32_t* rem0 = rem0_.data() + pixel * d1;
    const uint8_t* rank = rank_.data() + pixel * d1;
    for (int k = 0; k < d; ++k) key[k] = rem0[k] + (rank[k] <= d - r ? r : r - d1);
}

template <int D>
inline PermutohedralLattice::Key PermutohedralLattice::pack(const int32_t* key) const {
    const int d = D ? D : d_, bits = D ? std::min(32, 128 / D) : key_bits_;
    Key packed = 0;
    const uint32_t mask = bits >= 32 ? ~0u : (1u << bits) - 1;
    for (int k = 0; k < d; ++k) packed |= Key(static_cast<uint32_t>(key[k]) & mask) << (k * bits);
    return packed;
}

template <int D>
inline PermutohedralLattice::Key PermutohedralLattice::vertex_key(int64_t pixel, int r) const {
    int32_t key[kMaxDim];
    vertex_coordinates<D>(pixel, r, key);
    return pack<D>(key);
}

namespace {
// fn(std::integral_constant<int, D>) with D = d for the image CRF's dimensions, else 0.
template <class Fn>
void with_dim(int d, Fn&& fn) {
    if (d == 2) fn(std::integral_constant<int, 2>{});
    else if (d == 5) fn(std::integral_constant<int, 5>{});
    else fn(std::integral_constant<int, 0>{});
}
}  // namespace

inline uint32_t PermutohedralLattice::hash_key(Key key) {
    return static_cast<uint32_t>(mix(static_cast<uint64_t>(key) ^ mix(static_cast<uint64_t>(key >> 64))));
}

inline int PermutohedralLattice::partition(uint32_t hash) const {
    return static_cast<int>((uint64_t(hash) * uint64_t(partitions_)) >> 32);
}

// ---- build ----------------------------------------------------------------------------------

void PermutohedralLattice::build(const float* features, int pixels, int dim, ThreadPool& pool) {
    if (dim < 1 || dim > kMaxDim)
        throw Error(fmt::format("permutohedral lattice: feature dimension {} outside 1..{}", dim, kMaxDim));
    d_ = dim;
    n_ = pixels;
    m_ = 0;
    key_bits_ = std::min(32, 128 / d_);
    // The partition count only decides which thread inserts a key, never the numbering.
    partitions_ = pool.size();
    alpha_ = 1.0f / (1 + std::pow(2.0f, static_cast<float>(-d_)));
    elevate_pixels(features, pool);
    insert_vertices(pool);
    number_points(pool);
    link_neighbours(pool);
    split_shares(pool);
    channels_ = 0;
}

// Adams et al. 2010, section 3.1: elevate onto the plane sum(x) = 0 of R^{d+1}, find the
// enclosing simplex by the nearest remainder-0 point and the sort order (rank) of the
// residual, and the barycentric weights of its d+1 vertices. Float rounding as the peer's
// SSE build (fixtures/densecrf/README.md).
void PermutohedralLattice::elevate_pixels(const float* features, ThreadPool& pool) {
    const int d = d_, d1 = d_ + 1;
    // Lattice spacing = one standard deviation (Adams et al. 2010, p. 6): the constant
    // rounded to float, the product in double, the result to float.
    float scale[kMaxDim];
    const float inv_std = static_cast<float>(std::sqrt(2.0 / 3.0) * d1);
    for (int k = 0; k < d; ++k) scale[k] = static_cast<float>(1.0 / std::sqrt(double((k + 1) * (k + 2))) * inv_std);
    rem0_.resize(int64_t(n_) * d1);
    rank_.resize(int64_t(n_) * d1);
    vertices_.resize(int64_t(n_) * d1);
    hash_.resize(int64_t(n_) * d1);
    same_simplex_.resize(n_);
    // Packed keys hold key_bits_ per coordinate; blur neighbours reach d + 1 further.
    const float limit = std::ldexp(1.f, key_bits_ - 1) - 4.f * d1;
    std::atomic<bool> out_of_range{false};
    pool.parallel_for(n_, 2048, [&](int64_t begin, int64_t end) {
        bool inside = true;
        switch (d) {  // the two kernels of the image CRF, loops unrolled
            case 2: inside = elevate_range<2>(features, scale, limit, begin, end); break;
            case 5: inside = elevate_range<5>(features, scale, limit, begin, end); break;
            default: inside = elevate_range<0>(features, scale, limit, begin, end); break;
        }
        if (!inside) out_of_range = true;
    });
    if (out_of_range)
        throw Error(fmt::format("permutohedral lattice: features not finite or span more than 2^{} lattice "
                                "cells (a standard deviation too small?)", key_bits_ - 2));
}

template <int D>
bool PermutohedralLattice::elevate_range(const float* features, const float* scale, float limit, int64_t begin,
                                         int64_t end) {
    const int d = D ? D : d_, d1 = d + 1;
    const float down = 1.0f / d1, up = static_cast<float>(d1);
    bool all_inside = true;
    for (int64_t i = begin; i < end; ++i) {
        const float* f = features + i * d;
        int32_t* rem0 = rem0_.data() + i * d1;
        uint8_t* rank = rank_.data() + i * d1;
        float e[kMaxDim + 1], b[kMaxDim + 2];
        float sm = 0;
        for (int j = d; j > 0; --j) {
            float cf = f[j - 1] * scale[j - 1];
            e[j] = sm - j * cf;
            sm += cf;
        }
        e[0] = sm;
        bool inside = true;
        for (int k = 0; k <= d; ++k) inside = inside && std::fabs(e[k]) < limit;  // also false for NaN
        if (!inside) {
            all_inside = false;
            std::fill(rem0, rem0 + d1, 0);
            std::fill(rank, rank + d1, uint8_t{0});
        }
        int sum = 0;
        for (int k = 0; k <= d && inside; ++k) {
            float r = std::nearbyint(down * e[k]);  // half to even
            rem0[k] = static_cast<int32_t>(r * up);
            sum += static_cast<int>(r);
        }
        // Branch-free: the comparisons depend on the data and mispredict half the time.
        int rk[kMaxDim + 1] = {};
        float residual[kMaxDim + 1];
        for (int k = 0; k <= d; ++k) residual[k] = e[k] - static_cast<float>(rem0[k]);
        for (int k = 0; k < d; ++k)
            for (int j = k + 1; j <= d; ++j) {
                const int less = residual[k] < residual[j];
                rk[k] += less;
                rk[j] += 1 - less;
            }
        // The rounded point may leave the plane (sum != 0): shift the ranks back into 0..d
        // and move the affected coordinates by d+1.
        for (int k = 0; k <= d; ++k) {
            rk[k] += sum;
            const int shift = (rk[k] < 0) - (rk[k] > d);  // +1, -1 or 0
            rk[k] += shift * d1;
            rem0[k] += shift * d1;
            rank[k] = static_cast<uint8_t>(rk[k]);
        }
        std::fill(b, b + d + 2, 0.f);
        for (int k = 0; k <= d; ++k) {
            float v = (e[k] - static_cast<float>(rem0[k])) * down;
            b[d - rk[k]] += v;
            b[d - rk[k] + 1] -= v;
        }
        b[0] += 1.f + b[d + 1];  // wrap around
        // Neighbouring pixels often lie in the same simplex: then their vertices' keys and
        // hashes are the same (checked within this block only, so blocks stay independent).
        const bool same = i > begin && std::equal(rem0, rem0 + d1, rem0 - d1) && std::equal(rank, rank + d1, rank - d1);
        same_simplex_[i] = same;
        for (int r = 0; r <= d; ++r) {
            const int64_t position = i * d1 + r;
            vertices_[position] = {-1, b[r]};
            hash_[position] = same ? hash_[position - d1] : hash_key(vertex_key<D>(i, r));
        }
    }
    return all_inside;
}

// Open addressing with linear probing; slots hold the hash and an entry index, entries the
// packed key and its first vertex position (compact, so probing stays in cache).
int32_t PermutohedralLattice::Table::find_or_insert(Key key, uint32_t hash, int32_t position) {
    if ((count() + 1) * 2 > slots.size()) grow();
    const size_t mask = slots.size() - 1;
    size_t i = hash & mask;
    for (; slots[i].entry >= 0; i = (i + 1) & mask) {
        const Slot& s = slots[i];
        if (s.hash == hash && keys[s.entry] == key) return first[s.entry];
    }
    slots[i] = {hash, static_cast<int32_t>(keys.size())};
    keys.push_back(key);
    first.push_back(position);
    return position;
}

int32_t PermutohedralLattice::Table::find(Key key, uint32_t hash) const {
    const size_t mask = slots.size() - 1;
    for (size_t i = hash & mask; slots[i].entry >= 0; i = (i + 1) & mask) {
        const Slot& s = slots[i];
        if (s.hash == hash && keys[s.entry] == key) return s.entry;
    }
    return -1;
}

void PermutohedralLattice::Table::grow() {
    std::vector<Slot> old(std::max<size_t>(4096, slots.size() * 2), Slot{0, -1});
    old.swap(slots);
    const size_t mask = slots.size() - 1;
    for (const Slot& s : old) {
        if (s.entry < 0) continue;
        size_t i = s.hash & mask;
        while (slots[i].entry >= 0) i = (i + 1) & mask;
        slots[i] = s;
    }
}

void PermutohedralLattice::Table::clear() {
    std::fill(slots.begin(), slots.end(), Slot{0, -1});
    if (slots.empty()) grow();
    keys.clear();
    first.clear();
    point.clear();
}

// Each thread owns one partition of the hash values and scans all vertices for its own, so
// no locks are needed; first_[p] becomes the first position with p's key. Neighbouring
// pixels mostly share simplices, so the previous pixel's vertices are tried first.
void PermutohedralLattice::insert_vertices(ThreadPool& pool) {
    first_.resize(int64_t(n_) * (d_ + 1));
    tables_.resize(partitions_);
    with_dim(d_, [&](auto dim) { pool.run_each([&](int t) { insert_partition<decltype(dim)::value>(t); }); });
}

template <int D>
void PermutohedralLattice::insert_partition(int t) {
    const int d1 = (D ? D : d_) + 1;
    Table& table = tables_[t];
    table.clear();
    for (int64_t i = 0; i < n_; ++i) {
        const int64_t p0 = i * d1;
        if (same_simplex_[i]) {  // the pixel before has the same vertices
            for (int64_t p = p0; p < p0 + d1; ++p)
                if (partition(hash_[p]) == t) first_[p] = first_[p - d1];
            continue;
        }
        for (int r = 0; r < d1; ++r) {
            const int64_t p = p0 + r;
            const uint32_t h = hash_[p];
            if (partition(h) != t) continue;
            const Key key = vertex_key<D>(i, r);
            int32_t found = -1;
            // The same vertex of the pixel before (its first position is known).
            if (i > 0 && hash_[p - d1] == h && vertex_key<D>(i - 1, r) == key) found = first_[p - d1];
            if (found < 0) found = table.find_or_insert(key, h, static_cast<int32_t>(p));
            first_[p] = found;
        }
    }
}

int32_t PermutohedralLattice::find_point(Key key) const {
    const uint32_t hash = hash_key(key);
    const Table& table = tables_[partition(hash)];
    const int32_t entry = table.find(key, hash);
    return entry < 0 ? m_ : table.point[entry];
}

// Points are numbered in the order their key first occurs in pixel order.
void PermutohedralLattice::number_points(ThreadPool& pool) {
    const int64_t positions = int64_t(n_) * (d_ + 1);
    const int64_t chunks = (positions + kChunk - 1) / kChunk;
    chunk_base_.assign(chunks + 1, 0);
    pool.parallel_for(chunks, 1, [&](int64_t begin, int64_t end) {
        for (int64_t c = begin; c < end; ++c) {
            int64_t count = 0;
            for (int64_t p = c * kChunk, e = std::min(positions, p + kChunk); p < e; ++p) count += first_[p] == p;
            chunk_base_[c + 1] = count;
        }
    });
    for (int64_t c = 0; c < chunks; ++c) chunk_base_[c + 1] += chunk_base_[c];
    m_ = static_cast<int>(chunk_base_[chunks]);
    representative_.resize(m_);
    pool.parallel_for(chunks, 1, [&](int64_t begin, int64_t end) {
        for (int64_t c = begin; c < end; ++c) {
            int32_t next = static_cast<int32_t>(chunk_base_[c]);
            for (int64_t p = c * kChunk, e = std::min(positions, p + kChunk); p < e; ++p) {
                if (first_[p] != p) continue;
                vertices_[p].point = next;
                representative_[next++] = static_cast<int32_t>(p);
            }
        }
    });
    pool.parallel_for(positions, kChunk, [&](int64_t begin, int64_t end) {
        for (int64_t p = begin; p < end; ++p)
            if (first_[p] != p) vertices_[p].point = vertices_[first_[p]].point;
    });
    pool.run_each([&](int t) {
        Table& table = tables_[t];
        table.point.resize(table.first.size());
        for (size_t e = 0; e < table.first.size(); ++e) table.point[e] = vertices_[table.first[e]].point;
    });
}

// Blur neighbours along axis j (Adams et al. 2010, section 3.2): the key moved by -1 in every
// coordinate except +d in coordinate j, and the opposite; for j = d every stored coordinate
// moves by -1 / +1 (coordinate d is implied by the zero sum).
void PermutohedralLattice::link_neighbours(ThreadPool& pool) {
    neighbours_.resize(int64_t(d_ + 1) * m_ * 2);
    with_dim(d_, [&](auto dim) {
        pool.parallel_for(m_, 1024, [&](int64_t b, int64_t e) { link_range<decltype(dim)::value>(b, e); });
    });
}

template <int D>
void PermutohedralLattice::link_range(int64_t begin, int64_t end) {
    const int d = D ? D : d_, m = m_;
    int32_t key[kMaxDim], n1[kMaxDim], n2[kMaxDim];
    for (int64_t point = begin; point < end; ++point) {
        vertex_coordinates<D>(representative_[point] / (d + 1), representative_[point] % (d + 1), key);
        for (int j = 0; j <= d; ++j) {
            for (int k = 0; k < d; ++k) {
                n1[k] = key[k] - 1;
                n2[k] = key[k] + 1;
            }
            if (j < d) {
                n1[j] = key[j] + d;
                n2[j] = key[j] - d;
            }
            int32_t* out = neighbours_.data() + (int64_t(j) * m + point) * 2;
            out[0] = find_point(pack<D>(n1));
            out[1] = find_point(pack<D>(n2));
        }
    }
}

// Splat shares and tails. Points are numbered by first occurrence, so the points share t owns
// are [share_point_[t], share_point_[t+1]) and its pixels touch no point after those. The
// tails are a stable counting sort by point of the contributions share t makes to points
// before share_point_[t]: thread t counts and later places its own, after those of the
// shares before it.
void PermutohedralLattice::split_shares(ThreadPool& pool) {
    const int parts = pool.size(), d1 = d_ + 1;
    share_pixel_.resize(parts + 1);
    share_point_.resize(parts + 1);
    for (int t = 0; t <= parts; ++t) {
        share_pixel_[t] = static_cast<int32_t>(int64_t(n_) * t / parts);
        const int64_t first_position = int64_t(share_pixel_[t]) * d1;
        share_point_[t] = static_cast<int32_t>(
            std::lower_bound(representative_.begin(), representative_.end(), first_position) -
            representative_.begin());
    }
    share_counts_.resize(parts);
    pool.run_each([&](int t) {
        std::vector<int64_t>& count = share_counts_[t];
        count.assign(share_point_[t], 0);
        for (int64_t p = int64_t(share_pixel_[t]) * d1, e = int64_t(share_pixel_[t + 1]) * d1; p < e; ++p)
            if (vertices_[p].point < share_point_[t]) ++count[vertices_[p].point];
    });
    tail_point_.clear();
    tail_begin_.assign(1, 0);
    int64_t total = 0;
    for (int32_t m = 0; m < share_point_[parts - 1]; ++m) {  // counts become first slots
        const int64_t start = total;
        for (int t = 1; t < parts; ++t) {
            if (m >= share_point_[t]) continue;
            const int64_t c = share_counts_[t][m];
            share_counts_[t][m] = total;
            total += c;
        }
        if (total > start) {
            tail_point_.push_back(m);
            tail_begin_.push_back(total);
        }
    }
    tail_sources_.resize(total);
    pool.run_each([&](int t) {
        std::vector<int64_t>& next = share_counts_[t];
        for (int64_t i = share_pixel_[t]; i < share_pixel_[t + 1]; ++i)
            for (int r = 0; r < d1; ++r) {
                const LatticeVertex& v = vertices_[i * d1 + r];
                if (v.point < share_point_[t]) tail_sources_[next[v.point]++] = {static_cast<int32_t>(i), v.weight};
            }
    });
}

std::vector<int> PermutohedralLattice::point_key(int point) const {
    int32_t key[kMaxDim];
    vertex_coordinates(representative_.at(point) / (d_ + 1), representative_.at(point) % (d_ + 1), key);
    std::vector<int> out(key, key + d_);
    int sum = 0;
    for (int k : out) sum += k;
    out.push_back(-sum);
    return out;
}

std::pair<int, int> PermutohedralLattice::neighbours(int point, int axis) const {
    const int32_t* nb = neighbours_.data() + (int64_t(axis) * m_ + point) * 2;
    return {nb[0], nb[1]};
}

// ---- filtering ------------------------------------------------------------------------------
// Rows are 1 channel (the normalisation) or a multiple of the vector width (callers pad with
// zeros). Each channel is computed with the same operations in the same order as the peer's
// loops, whatever the width. V: Vec4 or Vec8; B: blocks of V per row, 0 = known at run time.

namespace {

template <class V, int B>
SIGHTLINE_INLINE void blur_kernel(const int32_t* __restrict nb_index, const float* __restrict src,
                                  float* __restrict dst, int blocks, int64_t begin, int64_t end) {
    constexpr int L = Simd<V>::lanes;
    const int nb = B ? B : blocks, c = L * nb;
    const V half = splat<V>(0.5f);
    for (int64_t m = begin; m < end; ++m) {
        const float* a = src + m * c;
        const float* n1 = src + int64_t(nb_index[2 * m]) * c;
        const float* n2 = src + int64_t(nb_index[2 * m + 1]) * c;
        for (int b = 0; b < nb; ++b)
            store<V>(dst + m * c + L * b, load<V>(a + L * b) + half * (load<V>(n1 + L * b) + load<V>(n2 + L * b)));
    }
}

// Phase 1 of the splat, as the peer's serial scatter (pixels in order, each adding
// weight * (in * scale) to its simplex's vertices) over pixels [first, last), restricted to
// the points [lo, hi) (zeroed first) that the share owns: reads the input sequentially.
template <class V, int B>
SIGHTLINE_INLINE void scatter_kernel(const LatticeVertex* __restrict vertices, int d1, const float* __restrict in,
                                     const float* __restrict scale, float* __restrict values, int blocks,
                                     int64_t first, int64_t last, int32_t lo, int32_t hi) {
    constexpr int L = Simd<V>::lanes;
    const int nb = B ? B : blocks, c = L * nb;
    std::fill(values + int64_t(lo) * c, values + int64_t(hi) * c, 0.f);
    const uint32_t span = static_cast<uint32_t>(hi - lo);
    V x[B ? B : kMaxBlocks];
    for (int64_t i = first; i < last; ++i) {
        const LatticeVertex* v = vertices + i * d1;
        const float* row = in + i * c;
        if (scale) {
            const V sc = splat<V>(scale[i]);
            for (int b = 0; b < nb; ++b) x[b] = load<V>(row + L * b) * sc;
        } else {
            for (int b = 0; b < nb; ++b) x[b] = load<V>(row + L * b);
        }
        for (int r = 0; r < d1; ++r) {
            if (static_cast<uint32_t>(v[r].point - lo) >= span) continue;
            float* out = values + int64_t(v[r].point) * c;
            const V w = splat<V>(v[r].weight);
            for (int b = 0; b < nb; ++b) store<V>(out + L * b, load<V>(out + L * b) + w * x[b]);
        }
    }
}

// Phase 2: each tail point's sum continues with the later shares' contributions, in pixel
// order, so it ends as the serial scatter's.
template <class V, int B>
SIGHTLINE_INLINE void tail_kernel(const int32_t* __restrict points, const int64_t* __restrict begin_of,
                                  const LatticeSource* __restrict sources, const float* __restrict in,
                                  const float* __restrict scale, float* __restrict values, int blocks,
                                  int64_t begin, int64_t end) {
    constexpr int L = Simd<V>::lanes;
    const int nb = B ? B : blocks, c = L * nb;
    V acc[B ? B : kMaxBlocks];
    for (int64_t j = begin; j < end; ++j) {
        float* out = values + int64_t(points[j]) * c;
        for (int b = 0; b < nb; ++b) acc[b] = load<V>(out + L * b);
        for (int64_t s = begin_of[j]; s < begin_of[j + 1]; ++s) {
            const float* row = in + int64_t(sources[s].pixel) * c;
            const V w = splat<V>(sources[s].weight);
            if (scale) {
                const V sc = splat<V>(scale[sources[s].pixel]);
                for (int b = 0; b < nb; ++b) acc[b] += w * (load<V>(row + L * b) * sc);
            } else {
                for (int b = 0; b < nb; ++b) acc[b] += w * load<V>(row + L * b);
            }
        }
        for (int b = 0; b < nb; ++b) store<V>(out + L * b, acc[b]);
    }
}

// The 8-lane kernels, compiled for AVX2 and chosen at run time.
template <int B>
SIGHTLINE_TARGET_AVX2 void blur_avx2(const int32_t* nb_index, const float* src, float* dst, int blocks,
                                     int64_t begin, int64_t end) {
    blur_kernel<Vec8, B>(nb_index, src, dst, blocks, begin, end);
}
template <int B>
SIGHTLINE_TARGET_AVX2 void scatter_avx2(const LatticeVertex* vertices, int d1, const float* in, const float* scale,
                                        float* values, int blocks, int64_t first, int64_t last, int32_t lo, int32_t hi) {
    scatter_kernel<Vec8, B>(vertices, d1, in, scale, values, blocks, first, last, lo, hi);
}
template <int B>
SIGHTLINE_TARGET_AVX2 void tail_avx2(const int32_t* points, const int64_t* begin_of, const LatticeSource* sources,
                                     const float* in, const float* scale, float* values, int blocks, int64_t begin,
                                     int64_t end) {
    tail_kernel<Vec8, B>(points, begin_of, sources, in, scale, values, blocks, begin, end);
}
template <int B>
SIGHTLINE_TARGET_AVX2 void slice_avx2(const PermutohedralLattice& lattice, int pixel, float* out, int blocks) {
    Vec8 acc[B ? B : kMaxBlocks / 2];
    lattice.slice_into<Vec8, B>(pixel, acc);
    for (int k = 0; k < blocks; ++k) store<Vec8>(out + 8 * k, acc[k]);
}

}  // namespace

void PermutohedralLattice::prepare_values(int channels, int labels, int lanes) {
    if (lanes != 4 && lanes != 8) throw Error(fmt::format("permutohedral lattice: vector width {}", lanes));
    if (channels < 1 || (channels > 1 && channels % lanes != 0) || channels > 4 * kMaxBlocks)
        throw Error(fmt::format("permutohedral lattice: {} channels (expected 1 or a multiple of {} up to {})",
                                channels, lanes, 4 * kMaxBlocks));
    channels_ = channels;
    lanes_ = lanes;
    scalar_order_ = labels <= 2;
    current_ = 0;
    const size_t size = (size_t(m_) + 1) * channels;
    for (auto& v : values_) {
        v.resize(size);
        std::fill(v.end() - channels, v.end(), 0.f);  // the zero row of missing neighbours
    }
}

void PermutohedralLattice::splat_part(const float* in, const float* scale, int part) {
    float* values = values_[current_].data();
    const int d1 = d_ + 1;
    const int64_t first = share_pixel_[part], last = share_pixel_[part + 1];
    const int32_t lo = share_point_[part], hi = share_point_[part + 1];
    if (channels_ == 1) {  // only the normalisation Lattice(1), at build time
        std::fill(values + lo, values + hi, 0.f);
        for (int64_t p = first * d1; p < last * d1; ++p) {
            const LatticeVertex& v = vertices_[p];
            if (v.point < lo) continue;
            const int64_t i = p / d1;
            values[v.point] += v.weight * (scale ? in[i] * scale[i] : in[i]);
        }
        return;
    }
    const int blocks = channels_ / lanes_;
    with_blocks(blocks, [&](auto b) {
        constexpr int B = decltype(b)::value;
        if (lanes_ == 8) scatter_avx2<B>(vertices_.data(), d1, in, scale, values, blocks, first, last, lo, hi);
        else scatter_kernel<Vec4, B>(vertices_.data(), d1, in, scale, values, blocks, first, last, lo, hi);
    });
}

void PermutohedralLattice::splat_tails(const float* in, const float* scale, int64_t begin, int64_t end) {
    float* values = values_[current_].data();
    if (channels_ == 1) {
        for (int64_t j = begin; j < end; ++j) {
            float acc = values[tail_point_[j]];
            for (int64_t s = tail_begin_[j]; s < tail_begin_[j + 1]; ++s) {
                const int32_t i = tail_sources_[s].pixel;
                acc += tail_sources_[s].weight * (scale ? in[i] * scale[i] : in[i]);
            }
            values[tail_point_[j]] = acc;
        }
        return;
    }
    const int blocks = channels_ / lanes_;
    with_blocks(blocks, [&](auto b) {
        constexpr int B = decltype(b)::value;
        if (lanes_ == 8)
            tail_avx2<B>(tail_point_.data(), tail_begin_.data(), tail_sources_.data(), in, scale, values, blocks,
                         begin, end);
        else
            tail_kernel<Vec4, B>(tail_point_.data(), tail_begin_.data(), tail_sources_.data(), in, scale, values,
                                 blocks, begin, end);
    });
}

void PermutohedralLattice::blur_rows(int axis, int64_t begin, int64_t end) {
    const int32_t* nb = neighbours_.data() + int64_t(axis) * m_ * 2;
    const float* src = values_[current_].data();
    float* dst = values_[current_ ^ 1].data();
    if (channels_ == 1) {
        for (int64_t m = begin; m < end; ++m) dst[m] = src[m] + 0.5f * (src[nb[2 * m]] + src[nb[2 * m + 1]]);
        return;
    }
    const int blocks = channels_ / lanes_;
    with_blocks(blocks, [&](auto b) {
        constexpr int B = decltype(b)::value;
        if (lanes_ == 8) blur_avx2<B>(nb, src, dst, blocks, begin, end);
        else blur_kernel<Vec4, B>(nb, src, dst, blocks, begin, end);
    });
}

void PermutohedralLattice::slice_pixel(int pixel, float* out) const {
    const LatticeVertex* v = vertices_.data() + int64_t(pixel) * (d_ + 1);
    const float* values = values_[current_].data();
    if (channels_ == 1) {
        float acc = 0.f;
        for (int r = 0; r <= d_; ++r) acc += v[r].weight * values[v[r].point] * alpha_;
        *out = acc;
        return;
    }
    const int blocks = channels_ / lanes_;
    with_blocks(blocks, [&](auto b) {
        constexpr int B = decltype(b)::value;
        if (lanes_ == 8) {
            slice_avx2<B>(*this, pixel, out, blocks);
        } else {
            Vec4 acc[B ? B : kMaxBlocks];
            slice_into<Vec4, B>(pixel, acc);
            for (int k = 0; k < blocks; ++k) store4(out + 4 * k, acc[k]);
        }
    });
}

void PermutohedralLattice::filter(const float* in, float* out, int channels, ThreadPool& pool, bool reverse) {
    prepare_values(channels, channels, channels % 8 == 0 ? vector_lanes() : 4);
    pool.run_each([&](int t) {
        for (int part = t; part < splat_parts(); part += pool.size()) splat_part(in, nullptr, part);
    });
    pool.parallel_for(splat_tail_count(), kTailGrain, [&](int64_t b, int64_t e) { splat_tails(in, nullptr, b, e); });
    for (int step = 0; step <= d_; ++step) {
        const int axis = reverse ? d_ - step : step;
        pool.parallel_for(m_, 1024, [&](int64_t b, int64_t e) { blur_rows(axis, b, e); });
        swap_values();
    }
    pool.parallel_for(n_, 1024, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) slice_pixel(static_cast<int>(i), out + i * channels);
    });
}

}  // namespace sightline::detail
