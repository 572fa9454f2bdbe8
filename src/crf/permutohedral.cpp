// Permutohedral lattice: build (elevate, hash, number, link, transpose) and filtering.
#include "crf/permutohedral.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>

#include <fmt/format.h>

#include "crf/thread_pool.hpp"
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

// ---- build ----------------------------------------------------------------------------------

void PermutohedralLattice::build(const float* features, int pixels, int dim, ThreadPool& pool) {
    if (dim < 1 || dim > kMaxDim)
        throw Error(fmt::format("permutohedral lattice: feature dimension {} outside 1..{}", dim, kMaxDim));
    d_ = dim;
    n_ = pixels;
    m_ = 0;
    // The partition count only decides which thread inserts a key, never the numbering.
    partitions_ = pool.size();
    alpha_ = 1.0f / (1 + std::pow(2.0f, static_cast<float>(-d_)));
    elevate_pixels(features, pool);
    insert_vertices(pool);
    number_points(pool);
    link_neighbours(pool);
    transpose_vertices(pool);
    channels_ = 0;
}

// Adams et al. 2010, section 3.1: elevate onto the plane sum(x) = 0 of R^{d+1}, find the
// enclosing simplex by the nearest remainder-0 point and the sort order (rank) of the
// residual, and the barycentric weights of its d+1 vertices.
void PermutohedralLattice::elevate_pixels(const float* features, ThreadPool& pool) {
    const int d = d_, d1 = d_ + 1;
    // Lattice spacing = one standard deviation (Adams et al. 2010, p. 6). Rounded as the
    // peer: the constant to float, the product in double, the result to float.
    float scale[kMaxDim];
    const float inv_std = static_cast<float>(std::sqrt(2.0 / 3.0) * d1);
    for (int k = 0; k < d; ++k) scale[k] = static_cast<float>(1.0 / std::sqrt(double((k + 1) * (k + 2))) * inv_std);
    rem0_.resize(int64_t(n_) * d1);
    rank_.resize(int64_t(n_) * d1);
    vertices_.resize(int64_t(n_) * d1);
    hash_.resize(int64_t(n_) * d1);

    std::atomic<bool> out_of_range{false};
    pool.parallel_for(n_, 2048, [&](int64_t begin, int64_t end) {
        float e[kMaxDim + 1], b[kMaxDim + 2];
        int32_t key[kMaxDim];
        const float down = 1.0f / d1, up = static_cast<float>(d1);
        for (int64_t i = begin; i < end; ++i) {
            const float* f = features + i * d;
            int32_t* rem0 = rem0_.data() + i * d1;
            uint8_t* rank = rank_.data() + i * d1;
            float sm = 0;
            for (int j = d; j > 0; --j) {
                float cf = f[j - 1] * scale[j - 1];
                e[j] = sm - j * cf;
                sm += cf;
            }
            e[0] = sm;
            // Keys are int32 (the original's int16 overflows for tiny sxy on large images);
            // refuse only what int32 key arithmetic cannot hold, and NaN.
            bool finite = true;
            for (int k = 0; k <= d; ++k) finite = finite && std::fabs(e[k]) < 1e8f;
            if (!finite) {
                out_of_range = true;
                std::fill(rem0, rem0 + d1, 0);
                std::fill(rank, rank + d1, uint8_t{0});
                continue;
            }
            int sum = 0;
            for (int k = 0; k <= d; ++k) {
                float r = std::nearbyint(down * e[k]);  // half to even, as the SSE build
                rem0[k] = static_cast<int32_t>(r * up);
                sum += static_cast<int>(r);
            }
            int rk[kMaxDim + 1] = {};
            for (int k = 0; k < d; ++k) {
                float dk = e[k] - static_cast<float>(rem0[k]);
                for (int j = k + 1; j <= d; ++j) {
                    if (dk < e[j] - static_cast<float>(rem0[j])) ++rk[k];
                    else ++rk[j];
                }
            }
            // The rounded point may leave the plane (sum != 0): shift the ranks back into
            // 0..d and move the affected coordinates by d+1.
            for (int k = 0; k <= d; ++k) {
                rk[k] += sum;
                if (rk[k] < 0) {
                    rk[k] += d1;
                    rem0[k] += d1;
                } else if (rk[k] > d) {
                    rk[k] -= d1;
                    rem0[k] -= d1;
                }
                rank[k] = static_cast<uint8_t>(rk[k]);
            }
            std::fill(b, b + d + 2, 0.f);
            for (int k = 0; k <= d; ++k) {
                float v = (e[k] - static_cast<float>(rem0[k])) * down;
                b[d - rk[k]] += v;
                b[d - rk[k] + 1] -= v;
            }
            b[0] += 1.f + b[d + 1];  // wrap around
            for (int r = 0; r <= d; ++r) {
                const int64_t position = i * d1 + r;
                vertices_[position] = {-1, b[r]};
                vertex_key(position, key);
                hash_[position] = hash_key(key);
            }
        }
    });
    if (out_of_range)
        throw Error("permutohedral lattice: features not finite or above 1e8 (a standard deviation too small?)");
}

void PermutohedralLattice::vertex_key(int64_t position, int32_t* key) const {
    const int d1 = d_ + 1;
    const int64_t pixel = position / d1;
    const int r = static_cast<int>(position - pixel * d1);
    const int32_t* rem0 = rem0_.data() + pixel * d1;
    const uint8_t* rank = rank_.data() + pixel * d1;
    // Vertex r of the simplex: remainder-0 point plus the canonical offset for this rank.
    for (int k = 0; k < d_; ++k) key[k] = rem0[k] + (rank[k] <= d_ - r ? r : r - d1);
}

bool PermutohedralLattice::same_key(int64_t a, int64_t b) const {
    int32_t ka[kMaxDim], kb[kMaxDim];
    vertex_key(a, ka);
    vertex_key(b, kb);
    return std::equal(ka, ka + d_, kb);
}

uint32_t PermutohedralLattice::hash_key(const int32_t* key) const {
    uint64_t h = 0;
    for (int k = 0; k < d_; ++k) h = (h + static_cast<uint32_t>(key[k])) * 0x9E3779B97F4A7C15ULL;
    return static_cast<uint32_t>(mix(h));
}

int PermutohedralLattice::partition(uint32_t hash) const {
    return static_cast<int>((uint64_t(hash) * uint64_t(partitions_)) >> 32);
}

void PermutohedralLattice::insert(Table& table, uint32_t hash, int32_t position) {
    if ((table.count + 1) * 2 > static_cast<int64_t>(table.slots.size())) {
        std::vector<Slot> old;
        old.swap(table.slots);
        table.slots.assign(std::max<size_t>(1024, old.size() * 2), Slot{0, -1});
        const size_t mask = table.slots.size() - 1;
        for (const Slot& s : old) {
            if (s.position < 0) continue;
            size_t i = s.hash & mask;
            while (table.slots[i].position >= 0) i = (i + 1) & mask;
            table.slots[i] = s;
        }
    }
    const size_t mask = table.slots.size() - 1;
    size_t i = hash & mask;
    while (table.slots[i].position >= 0) i = (i + 1) & mask;
    table.slots[i] = {hash, position};
    ++table.count;
}

// Each thread owns one partition of the hash values and scans all vertices for its own, so
// no locks are needed; first_[p] becomes the first position with p's key.
void PermutohedralLattice::insert_vertices(ThreadPool& pool) {
    const int64_t positions = int64_t(n_) * (d_ + 1);
    first_.resize(positions);
    tables_.resize(partitions_);
    const int64_t expected = positions / partitions_ / 4 + 1;
    pool.run_each([&](int t) {
        Table& table = tables_[t];
        table.count = 0;
        size_t capacity = 1024;
        while (capacity < size_t(expected) * 2) capacity *= 2;
        table.slots.assign(std::max(capacity, table.slots.size()), Slot{0, -1});
        for (int64_t p = 0; p < positions; ++p) {
            const uint32_t h = hash_[p];
            if (partition(h) != t) continue;
            const size_t mask = table.slots.size() - 1;
            size_t i = h & mask;
            int32_t found = -1;
            for (; table.slots[i].position >= 0; i = (i + 1) & mask) {
                const Slot& s = table.slots[i];
                if (s.hash == h && same_key(s.position, p)) {
                    found = s.position;
                    break;
                }
            }
            if (found < 0) {
                insert(table, h, static_cast<int32_t>(p));
                found = static_cast<int32_t>(p);
            }
            first_[p] = found;
        }
    });
}

int64_t PermutohedralLattice::find(const int32_t* key, uint32_t hash) const {
    const Table& table = tables_[partition(hash)];
    const size_t mask = table.slots.size() - 1;
    int32_t probe[kMaxDim];
    for (size_t i = hash & mask; table.slots[i].position >= 0; i = (i + 1) & mask) {
        const Slot& s = table.slots[i];
        if (s.hash != hash) continue;
        vertex_key(s.position, probe);
        if (std::equal(probe, probe + d_, key)) return s.position;
    }
    return -1;
}

// Points are numbered in the order their key first occurs in pixel order.
void PermutohedralLattice::number_points(ThreadPool& pool) {
    const int64_t positions = int64_t(n_) * (d_ + 1);
    const int64_t chunks = (positions + kChunk - 1) / kChunk;
    chunk_base_.assign(chunks + 1, 0);
    pool.parallel_for(chunks, 1, [&](int64_t begin, int64_t end) {
        for (int64_t c = begin; c < end; ++c) {
            int64_t count = 0;
            for (int64_t p = c * kChunk, e = std::min(positions, p + kChunk); p < e; ++p)
                count += first_[p] == p;
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
}

// Blur neighbours along axis j (Adams et al. 2010, section 3.2): the key moved by -1 in every
// coordinate except +d in coordinate j, and the opposite; for j = d every stored coordinate
// moves by -1 / +1 (coordinate d is implied by the zero sum).
void PermutohedralLattice::link_neighbours(ThreadPool& pool) {
    const int d = d_, m = m_;
    neighbours_.resize(int64_t(d + 1) * m * 2);
    pool.parallel_for(m, 1024, [&](int64_t begin, int64_t end) {
        int32_t key[kMaxDim], n1[kMaxDim], n2[kMaxDim];
        for (int64_t point = begin; point < end; ++point) {
            vertex_key(representative_[point], key);
            for (int j = 0; j <= d; ++j) {
                for (int k = 0; k < d; ++k) {
                    n1[k] = key[k] - 1;
                    n2[k] = key[k] + 1;
                }
                if (j < d) {
                    n1[j] = key[j] + d;
                    n2[j] = key[j] - d;
                }
                int64_t p1 = find(n1, hash_key(n1)), p2 = find(n2, hash_key(n2));
                int32_t* out = neighbours_.data() + (int64_t(j) * m + point) * 2;
                out[0] = p1 < 0 ? m : vertices_[p1].point;
                out[1] = p2 < 0 ? m : vertices_[p2].point;
            }
        }
    });
}

// The gather splat needs, per point, its pixels in pixel order. Thread t owns a range of
// points and scans all vertices for them, so the lists do not depend on the thread count.
void PermutohedralLattice::transpose_vertices(ThreadPool& pool) {
    const int d1 = d_ + 1;
    const int64_t positions = int64_t(n_) * d1;
    const int threads = pool.size();
    row_start_.assign(int64_t(m_) + 1, 0);
    sources_.resize(positions);
    auto owned = [&](int t) {
        return std::make_pair(int64_t(m_) * t / threads, int64_t(m_) * (t + 1) / threads);
    };
    pool.run_each([&](int t) {
        auto [lo, hi] = owned(t);
        for (int64_t p = 0; p < positions; ++p) {
            int32_t point = vertices_[p].point;
            if (point >= lo && point < hi) ++row_start_[point + 1];
        }
    });
    for (int64_t i = 0; i < m_; ++i) row_start_[i + 1] += row_start_[i];
    pool.run_each([&](int t) {
        auto [lo, hi] = owned(t);
        std::vector<int32_t> cursor(row_start_.begin() + lo, row_start_.begin() + hi);
        for (int64_t p = 0; p < positions; ++p) {
            const LatticeVertex& v = vertices_[p];
            if (v.point >= lo && v.point < hi)
                sources_[cursor[v.point - lo]++] = {static_cast<int32_t>(p / d1), v.weight};
        }
    });
}

std::vector<int> PermutohedralLattice::point_key(int point) const {
    int32_t key[kMaxDim];
    vertex_key(representative_.at(point), key);
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

void PermutohedralLattice::prepare_values(int channels) {
    channels_ = channels;
    current_ = 0;
    const size_t size = (size_t(m_) + 1) * channels;
    for (auto& v : values_) {
        v.resize(size);
        std::fill(v.end() - channels, v.end(), 0.f);  // the zero row of missing neighbours
    }
}

void PermutohedralLattice::splat_rows(const float* in, const float* scale, int64_t begin, int64_t end) {
    const int c = channels_;
    float* values = values_[current_].data();
    for (int64_t m = begin; m < end; ++m) {
        float* acc = values + m * c;
        std::fill(acc, acc + c, 0.f);
        for (int32_t s = row_start_[m]; s < row_start_[m + 1]; ++s) {
            const LatticeSource src = sources_[s];
            const float* v = in + int64_t(src.pixel) * c;
            const float w = src.weight;
            if (scale) {
                const float sc = scale[src.pixel];
                for (int k = 0; k < c; ++k) acc[k] += w * (v[k] * sc);
            } else {
                for (int k = 0; k < c; ++k) acc[k] += w * v[k];
            }
        }
    }
}

void PermutohedralLattice::blur_rows(int axis, int64_t begin, int64_t end) {
    const int c = channels_;
    const float* src = values_[current_].data();
    float* dst = values_[current_ ^ 1].data();
    const int32_t* nb = neighbours_.data() + int64_t(axis) * m_ * 2;
    for (int64_t m = begin; m < end; ++m) {
        const float* a = src + m * c;
        const float* n1 = src + int64_t(nb[2 * m]) * c;
        const float* n2 = src + int64_t(nb[2 * m + 1]) * c;
        float* o = dst + m * c;
        for (int k = 0; k < c; ++k) o[k] = a[k] + 0.5f * (n1[k] + n2[k]);
    }
}

void PermutohedralLattice::slice_pixel(int pixel, float* out) const {
    const int c = channels_, d1 = d_ + 1;
    const float* values = values_[current_].data();
    const LatticeVertex* v = vertices_.data() + int64_t(pixel) * d1;
    std::fill(out, out + c, 0.f);
    // The peer scales each term as (w * value) * alpha for 1-2 channels and as
    // (w * alpha) * value in its SSE path for more: keep both for float parity.
    if (c <= 2) {
        for (int r = 0; r < d1; ++r) {
            const float* l = values + int64_t(v[r].point) * c;
            for (int k = 0; k < c; ++k) out[k] += v[r].weight * l[k] * alpha_;
        }
    } else {
        for (int r = 0; r < d1; ++r) {
            const float* l = values + int64_t(v[r].point) * c;
            const float w = v[r].weight * alpha_;
            for (int k = 0; k < c; ++k) out[k] += w * l[k];
        }
    }
}

void PermutohedralLattice::filter(const float* in, float* out, int channels, ThreadPool& pool, bool reverse) {
    prepare_values(channels);
    pool.parallel_for(m_, 512, [&](int64_t b, int64_t e) { splat_rows(in, nullptr, b, e); });
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
