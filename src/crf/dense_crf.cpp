// Mean-field inference of the fully connected CRF (Kraehenbuehl & Koltun 2011, Algorithm 1).
#include <algorithm>
#include <atomic>
#include <cmath>

#include <fmt/format.h>

#include "crf/kernels.hpp"
#include "crf/thread_pool.hpp"
#include "crf/vec4.hpp"
#include "sightline/crf.hpp"


namespace sightline {
namespace {

using detail::Simd;
using detail::splat;
using detail::Vec4;
using detail::Vec8;

// Inside, a pixel's labels are one row, padded to a multiple of the vector width (8 lanes
// with AVX2 when there are more than 4 labels, else 4). Padding energies are -1e30 so that
// their Q is exactly 0 and never reaches the lattices.
inline int lanes_for(int k_count) { return detail::vector_lanes() == 8 && k_count > 4 ? 8 : 4; }
inline int padded(int k_count, int lanes) { return (k_count + lanes - 1) / lanes * lanes; }
constexpr float kPadLogit = -1e30f;

// Q_i = exp(l_i - max l_i) / sum, as the peer's expAndNormalize. The sum runs over 4-lane
// quarters in memory order for either width, so both widths give the same bits.
template <class V>
SIGHTLINE_INLINE void softmax(V* l, int nb) {
    V top = splat<V>(kPadLogit);  // every value is >= this
    for (int b = 0; b < nb; ++b) top = l[b] > top ? l[b] : top;
    float t = top[0];
    for (int k = 1; k < Simd<V>::lanes; ++k) t = std::max(t, top[k]);
    const V m = splat<V>(t);
    Vec4 sum = splat<Vec4>(0.f);
    for (int b = 0; b < nb; ++b) {
        l[b] = detail::exp_nonpositive(l[b] - m);
        detail::add_quarters(sum, l[b]);
    }
    const V total = splat<V>((sum[0] + sum[1]) + (sum[2] + sum[3]));
    for (int b = 0; b < nb; ++b) l[b] /= total;
}

// What the per-pixel update reads and writes.
struct PixelUpdate {
    const detail::PairwiseKernel& gaussian;
    const detail::PairwiseKernel& bilateral;
    const float* neg_unary;
    float* q_next;
    int stride;
};

// Steps 3-5 of Algorithm 1 for pixels [begin, end): slice both kernels' messages, weight them
// by the Potts compat (the sum over other labels of the paper differs from this by a term
// shared by all labels, which the normalisation removes), add the unary and normalise:
//   Q_i = softmax(-U_i + w_g n_i Lg(n .* Q)_i + w_b n_i Lb(n .* Q)_i)
// The two additions are made in the peer's order (-U - compat(Kg) - compat(Kb)).
template <class V, int B>
SIGHTLINE_INLINE void update_pixels(const PixelUpdate& a, int64_t begin, int64_t end) {
    constexpr int L = Simd<V>::lanes;
    const int nb = B ? B : a.stride / L;
    const V wg = splat<V>(a.gaussian.weight), wb = splat<V>(a.bilateral.weight);
    V sg[B ? B : detail::kMaxBlocks], sb[B ? B : detail::kMaxBlocks], l[B ? B : detail::kMaxBlocks];
    constexpr int64_t kAhead = 4;  // pixels
    // In runs of pixels: first the logits into the output rows, then the softmax of each row
    // (still in L1). A pixel's softmax is a long chain of dependent steps; in a loop of
    // softmaxes alone the next pixel's chain fits in the out-of-order window and overlaps.
    constexpr int64_t kRun = 32;
    for (int64_t run = begin; run < end; run += kRun) {
        const int64_t run_end = std::min(end, run + kRun);
        for (int64_t i = run; i < run_end; ++i) {
            if (i + kAhead < end) a.bilateral.lattice.prefetch_slice(static_cast<int>(i + kAhead));
            // Dimensions 2 (position) and 5 (position, colour), as set_image builds them.
            a.gaussian.lattice.slice_into<V, B, 2>(static_cast<int>(i), sg);
            a.bilateral.lattice.slice_into<V, B, 5>(static_cast<int>(i), sb);
            const V ng = splat<V>(a.gaussian.norm[i]), nbl = splat<V>(a.bilateral.norm[i]);
            const float* u = a.neg_unary + i * a.stride;
            for (int b = 0; b < nb; ++b) {
                l[b] = detail::load<V>(u + L * b) + wg * (sg[b] * ng);
                l[b] = l[b] + wb * (sb[b] * nbl);
                detail::store<V>(a.q_next + i * a.stride + L * b, l[b]);
            }
        }
        for (int64_t i = run; i < run_end; ++i) {
            float* row = a.q_next + i * a.stride;
            for (int b = 0; b < nb; ++b) l[b] = detail::load<V>(row + L * b);
            softmax(l, nb);
            for (int b = 0; b < nb; ++b) detail::store<V>(row + L * b, l[b]);
        }
    }
}

template <int B>
SIGHTLINE_TARGET_AVX2 void update_pixels_avx2(const PixelUpdate& a, int64_t begin, int64_t end) {
    update_pixels<Vec8, B>(a, begin, end);
}

// Q0 = softmax(-U) for pixels [begin, end), rows of `stride`.
template <class V, int B>
SIGHTLINE_INLINE void initial_q(const float* neg_unary, float* q, int stride, int64_t begin, int64_t end) {
    constexpr int L = Simd<V>::lanes;
    const int nb = B ? B : stride / L;
    V l[B ? B : detail::kMaxBlocks] = {};
    for (int64_t i = begin; i < end; ++i) {
        for (int b = 0; b < nb; ++b) l[b] = detail::load<V>(neg_unary + i * stride + L * b);
        softmax(l, nb);
        for (int b = 0; b < nb; ++b) detail::store<V>(q + i * stride + L * b, l[b]);
    }
}

template <int B>
SIGHTLINE_TARGET_AVX2 void initial_q_avx2(const float* neg_unary, float* q, int stride, int64_t begin, int64_t end) {
    initial_q<Vec8, B>(neg_unary, q, stride, begin, end);
}

// In place: r[j][i] becomes r[i][j] (8 x 8 floats; unpack, shuffle, swap halves).
SIGHTLINE_INLINE void transpose8(Vec8* r) {
    Vec8 t[8], u[8];
    for (int j = 0; j < 8; j += 2) {
        t[j] = __builtin_shufflevector(r[j], r[j + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[j + 1] = __builtin_shufflevector(r[j], r[j + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int j = 0; j < 8; j += 4)
        for (int h = 0; h < 2; ++h) {
            u[j + 2 * h] = __builtin_shufflevector(t[j + h], t[j + h + 2], 0, 1, 8, 9, 4, 5, 12, 13);
            u[j + 2 * h + 1] = __builtin_shufflevector(t[j + h], t[j + h + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        }
    for (int j = 0; j < 4; ++j) {
        r[j] = __builtin_shufflevector(u[j], u[j + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        r[j + 4] = __builtin_shufflevector(u[j], u[j + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    }
}

// -U (K x n planes) to rows of `stride` (8 | stride) for pixels [begin, end), clamped to
// +-1e30, padding labels kPadLogit, in 8 x 8 blocks. Returns whether some energy is NaN.
// The same values as the scalar loop in infer() (negation and clamp are exact).
SIGHTLINE_TARGET_AVX2 bool planar_to_rows_avx2(const float* unary, int k_count, int64_t n, int stride, float* out,
                                               int64_t begin, int64_t end) {
    typedef Simd<Vec8>::Int Mask;
    const Vec8 lo = splat<Vec8>(kPadLogit), hi = splat<Vec8>(-kPadLogit);
    Mask nan = {};
    int64_t i = begin;
    for (; i + 8 <= end; i += 8)
        for (int k0 = 0; k0 < stride; k0 += 8) {
            Vec8 r[8];
            for (int j = 0; j < 8; ++j) {
                if (k0 + j >= k_count) {
                    r[j] = lo;
                    continue;
                }
                const Vec8 e = -detail::load<Vec8>(unary + (k0 + j) * n + i);
                nan |= e != e;
                r[j] = e < lo ? lo : (hi < e ? hi : e);  // std::clamp
            }
            transpose8(r);
            for (int p = 0; p < 8; ++p) detail::store<Vec8>(out + (i + p) * stride + k0, r[p]);
        }
    bool any = false;
    for (int l = 0; l < 8; ++l) any = any || nan[l];
    for (; i < end; ++i)
        for (int k = 0; k < stride; ++k) {
            const float e = k < k_count ? -unary[k * n + i] : kPadLogit;
            any = any || std::isnan(e);
            out[i * stride + k] = std::clamp(e, kPadLogit, -kPadLogit);
        }
    return any;
}

// Rows of `stride` (8 | stride) to K x n planes for pixels [begin, end).
SIGHTLINE_TARGET_AVX2 void rows_to_planar_avx2(const float* q, int k_count, int64_t n, int stride, float* out,
                                               int64_t begin, int64_t end) {
    int64_t i = begin;
    for (; i + 8 <= end; i += 8)
        for (int k0 = 0; k0 < k_count; k0 += 8) {
            Vec8 r[8];
            for (int p = 0; p < 8; ++p) r[p] = detail::load<Vec8>(q + (i + p) * stride + k0);
            transpose8(r);
            for (int j = 0; j < 8 && k0 + j < k_count; ++j) detail::store<Vec8>(out + (k0 + j) * n + i, r[j]);
        }
    for (; i < end; ++i)
        for (int k = 0; k < k_count; ++k) out[k * n + i] = q[i * stride + k];
}

// fn(rows of a)[begin, end) and fn(rows of b) over the concatenation of both ranges, as one
// parallel region (one barrier instead of two).
template <class FA, class FB>
void for_two_ranges(detail::ThreadPool& pool, int64_t na, int64_t nb, int64_t grain, FA&& fa, FB&& fb) {
    pool.parallel_for(na + nb, grain, [&](int64_t begin, int64_t end) {
        if (begin < na) fa(begin, std::min(end, na));
        if (end > na) fb(std::max(begin, na) - na, end - na);
    });
}

}  // namespace

struct DenseCrf::Impl {
    DenseCrfOptions options;
    detail::ThreadPool pool;
    detail::PairwiseKernel gaussian, bilateral;
    int height = 0, width = 0;
    // Reused by every call: features for the build; -U, Q and the next Q, pixel-major.
    std::vector<float> features;
    detail::AlignedFloats neg_unary, q, q_next;

    explicit Impl(const DenseCrfOptions& o) : options(o), pool(o.threads) {}

    void iterate(int k_count);
};

DenseCrf::DenseCrf(const DenseCrfOptions& options) {
    validate(options);
    impl_ = std::make_unique<Impl>(options);
}

DenseCrf::~DenseCrf() = default;

const DenseCrfOptions& DenseCrf::options() const { return impl_->options; }

void DenseCrf::set_image(const cv::Mat& image) {
    if (image.type() != CV_8UC3 || image.empty())
        throw Error(fmt::format("dense CRF: expected a non-empty 8-bit 3-channel image, got type {} of {} x {}",
                                image.type(), image.rows, image.cols));
    Impl& s = *impl_;
    const DenseCrfOptions& o = s.options;
    s.height = image.rows;
    s.width = image.cols;
    const int n = s.height * s.width;
    detail::position_features(s.height, s.width, o.gaussian_sxy, s.features);
    s.gaussian.build(s.features.data(), n, 2, o.gaussian_compat, s.pool);
    cv::Mat contiguous = image.isContinuous() ? image : image.clone();
    detail::bilateral_features(contiguous, o.bilateral_sxy, o.bilateral_srgb, s.features);
    s.bilateral.build(s.features.data(), n, 5, o.bilateral_compat, s.pool);
}

void DenseCrf::Impl::iterate(int k_count) {
    auto& lg = gaussian.lattice;
    auto& lb = bilateral.lattice;
    const int lanes = lanes_for(k_count), stride = padded(k_count, lanes);
    lg.prepare_values(stride, k_count, lanes);
    lb.prepare_values(stride, k_count, lanes);
    // Step 2, message passing: splat n .* Q into both lattices, blur, then slice (below).
    // Each thread scatters its share of the pixels into the points its share owns, then the
    // contributions to points owned by an earlier share are added (permutohedral.hpp).
    pool.run_each([&](int t) {
        for (int part = t; part < lg.splat_parts(); part += pool.size())
            lg.splat_part(q.data(), gaussian.norm.data(), part);
        for (int part = t; part < lb.splat_parts(); part += pool.size())
            lb.splat_part(q.data(), bilateral.norm.data(), part);
    });
    for_two_ranges(pool, lg.splat_tail_count(), lb.splat_tail_count(), detail::PermutohedralLattice::kTailGrain,
                   [&](int64_t b, int64_t e) { lg.splat_tails(q.data(), gaussian.norm.data(), b, e); },
                   [&](int64_t b, int64_t e) { lb.splat_tails(q.data(), bilateral.norm.data(), b, e); });
    const int steps = std::max(lg.dim(), lb.dim()) + 1;
    for (int axis = 0; axis < steps; ++axis) {
        const int64_t mg = axis <= lg.dim() ? lg.points() : 0;
        const int64_t mb = axis <= lb.dim() ? lb.points() : 0;
        for_two_ranges(pool, mg, mb, 1024,
                       [&](int64_t b, int64_t e) { lg.blur_rows(axis, b, e); },
                       [&](int64_t b, int64_t e) { lb.blur_rows(axis, b, e); });
        if (mg) lg.swap_values();
        if (mb) lb.swap_values();
    }
    const PixelUpdate update{gaussian, bilateral, neg_unary.data(), q_next.data(), stride};
    detail::with_blocks(stride / lanes, [&](auto blocks) {
        constexpr int B = decltype(blocks)::value;
        pool.parallel_for(int64_t(height) * width, 1024, [&](int64_t begin, int64_t end) {
            if (lanes == 8) update_pixels_avx2<B>(update, begin, end);
            else update_pixels<Vec4, B>(update, begin, end);
        });
    });
    q.swap(q_next);
}

void DenseCrf::infer(const float* unary, int num_labels, float* q_out, int iterations) {
    Impl& s = *impl_;
    if (s.height == 0) throw Error("dense CRF: infer() called before set_image()");
    if (num_labels < 1 || num_labels > 256)
        throw Error(fmt::format("dense CRF: number of labels must be 1..256, got {}", num_labels));
    if (iterations < 0) iterations = s.options.iterations;
    const int64_t n = int64_t(s.height) * s.width;
    const int k_count = num_labels, lanes = lanes_for(k_count), stride = padded(k_count, lanes);
    s.neg_unary.resize(n * stride);
    s.q.resize(n * stride);
    s.q_next.resize(n * stride);
    // Planar to pixel-major in tiles of 64 pixels, so that each plane is read in runs.
    // Energies are clamped to +-1e30 (an infinite energy is a zero probability); NaN is
    // refused.
    std::atomic<bool> has_nan{false};
    s.pool.parallel_for(n, 4096, [&](int64_t begin, int64_t end) {
        if (lanes == 8) {
            if (planar_to_rows_avx2(unary, k_count, n, stride, s.neg_unary.data(), begin, end)) has_nan = true;
            return;
        }
        for (int64_t tile = begin; tile < end; tile += 64) {
            const int64_t tile_end = std::min(end, tile + 64);
            for (int k = 0; k < stride; ++k)
                for (int64_t i = tile; i < tile_end; ++i) {
                    const float e = k < k_count ? -unary[k * n + i] : kPadLogit;
                    if (std::isnan(e)) has_nan = true;
                    s.neg_unary[i * stride + k] = std::clamp(e, kPadLogit, -kPadLogit);
                }
        }
    });
    if (has_nan) throw Error("dense CRF: unary energies contain NaN");
    detail::with_blocks(stride / lanes, [&](auto blocks) {
        constexpr int B = decltype(blocks)::value;
        s.pool.parallel_for(n, 4096, [&](int64_t begin, int64_t end) {
            if (lanes == 8) initial_q_avx2<B>(s.neg_unary.data(), s.q.data(), stride, begin, end);
            else initial_q<Vec4, B>(s.neg_unary.data(), s.q.data(), stride, begin, end);
        });
    });
    for (int it = 0; it < iterations; ++it) s.iterate(k_count);
    s.pool.parallel_for(n, 4096, [&](int64_t begin, int64_t end) {
        if (lanes == 8) return rows_to_planar_avx2(s.q.data(), k_count, n, stride, q_out, begin, end);
        for (int64_t tile = begin; tile < end; tile += 64)
            for (int k = 0; k < k_count; ++k)
                for (int64_t i = tile; i < std::min(end, tile + 64); ++i) q_out[k * n + i] = s.q[i * stride + k];
    });
}

std::vector<float> DenseCrf::infer(const std::vector<float>& unary, int num_labels, int iterations) {
    const size_t n = size_t(impl_->height) * impl_->width;
    if (num_labels < 1 || unary.size() != n * num_labels)
        throw Error(fmt::format("dense CRF: unary has {} values, expected K x H x W = {} x {} x {}", unary.size(),
                                num_labels, impl_->height, impl_->width));
    std::vector<float> q(unary.size());
    infer(unary.data(), num_labels, q.data(), iterations);
    return q;
}

cv::Mat labels_from_q(const float* q, int num_labels, int height, int width) {
    if (num_labels < 1 || num_labels > 256)
        throw Error(fmt::format("dense CRF: number of labels must be 1..256, got {}", num_labels));
    const int64_t n = int64_t(height) * width;
    cv::Mat labels(height, width, CV_8UC1);
    uint8_t* out = labels.ptr<uint8_t>();
    for (int64_t i = 0; i < n; ++i) {
        int best = 0;
        for (int k = 1; k < num_labels; ++k)
            if (q[k * n + i] > q[best * n + i]) best = k;
        out[i] = static_cast<uint8_t>(best);
    }
    return labels;
}

void validate(const DenseCrfOptions& o) {
    auto positive = [](float v, const char* flag, const char* name) {
        if (!(v > 0) || !std::isfinite(v)) throw UsageError(fmt::format("{}: {} must be > 0, got {}", flag, name, v));
    };
    positive(o.gaussian_sxy, "--gaussian", "SXY");
    positive(o.gaussian_compat, "--gaussian", "COMPAT");
    positive(o.bilateral_sxy, "--bilateral", "SXY");
    positive(o.bilateral_srgb, "--bilateral", "SRGB");
    positive(o.bilateral_compat, "--bilateral", "COMPAT");
    if (o.iterations < 0) throw UsageError(fmt::format("--iterations: must be >= 0, got {}", o.iterations));
    if (o.threads < 0) throw UsageError(fmt::format("--threads: must be >= 0, got {}", o.threads));
}

}  // namespace sightline
