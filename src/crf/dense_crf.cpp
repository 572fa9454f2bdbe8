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

using detail::broadcast;
using detail::load4;
using detail::store4;
using detail::Vec4;

// Inside, a pixel's labels are one row, padded to a multiple of 4 for the vector kernels.
// Padding energies are -1e30 so that their Q is exactly 0 and never reaches the lattices.
inline int padded(int k_count) { return (k_count + 3) / 4 * 4; }
constexpr float kPadLogit = -1e30f;

// Q_i = exp(l_i - max l_i) / sum, as the peer's expAndNormalize (B blocks of 4 labels).
template <int B>
inline void softmax(Vec4* l, int nb) {
    Vec4 top = broadcast(kPadLogit);  // every value is >= this
    for (int b = 0; b < nb; ++b) top = l[b] > top ? l[b] : top;
    const Vec4 m = broadcast(std::max(std::max(top[0], top[1]), std::max(top[2], top[3])));
    Vec4 sum = broadcast(0.f);
    for (int b = 0; b < nb; ++b) {
        l[b] = detail::exp_nonpositive(l[b] - m);
        sum += l[b];
    }
    const Vec4 total = broadcast((sum[0] + sum[1]) + (sum[2] + sum[3]));
    for (int b = 0; b < nb; ++b) l[b] /= total;
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
    std::vector<float> features, neg_unary, q, q_next;

    explicit Impl(const DenseCrfOptions& o) : options(o), pool(o.threads) {}

    void iterate(int k_count);
    template <int B>
    void update_pixels(int stride, int64_t begin, int64_t end);
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

// Steps 3-5 of Algorithm 1 for pixels [begin, end): slice both kernels' messages, weight them
// by the Potts compat (the sum over other labels of the paper differs from this by a term
// shared by all labels, which the normalisation removes), add the unary and normalise:
//   Q_i = softmax(-U_i + w_g n_i Lg(n .* Q)_i + w_b n_i Lb(n .* Q)_i)
// The two additions are made in the peer's order (-U - compat(Kg) - compat(Kb)).
template <int B>
void DenseCrf::Impl::update_pixels(int stride, int64_t begin, int64_t end) {
    const int nb = B ? B : stride / 4;
    const Vec4 wg = broadcast(gaussian.weight), wb = broadcast(bilateral.weight);
    for (int64_t i = begin; i < end; ++i) {
        Vec4 sg[B ? B : detail::kMaxBlocks], sb[B ? B : detail::kMaxBlocks], l[B ? B : detail::kMaxBlocks];
        gaussian.lattice.slice_into<B>(static_cast<int>(i), sg);
        bilateral.lattice.slice_into<B>(static_cast<int>(i), sb);
        const Vec4 ng = broadcast(gaussian.norm[i]), nbl = broadcast(bilateral.norm[i]);
        const float* u = neg_unary.data() + i * stride;
        for (int b = 0; b < nb; ++b) {
            l[b] = load4(u + 4 * b) + wg * (sg[b] * ng);
            l[b] = l[b] + wb * (sb[b] * nbl);
        }
        softmax<B>(l, nb);
        for (int b = 0; b < nb; ++b) store4(q_next.data() + i * stride + 4 * b, l[b]);
    }
}

void DenseCrf::Impl::iterate(int k_count) {
    auto& lg = gaussian.lattice;
    auto& lb = bilateral.lattice;
    const int stride = padded(k_count);
    lg.prepare_values(stride, k_count);
    lb.prepare_values(stride, k_count);
    // Step 2, message passing: splat n .* Q into both lattices, blur, then slice (below).
    pool.run_each([&](int t) {
        auto [g_lo, g_hi] = lg.owned_points(t, pool.size());
        lg.splat_owned(q.data(), gaussian.norm.data(), g_lo, g_hi);
        auto [b_lo, b_hi] = lb.owned_points(t, pool.size());
        lb.splat_owned(q.data(), bilateral.norm.data(), b_lo, b_hi);
    });
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
    detail::with_blocks(stride / 4, [&](auto blocks) {
        pool.parallel_for(int64_t(height) * width, 1024, [&](int64_t begin, int64_t end) {
            update_pixels<decltype(blocks)::value>(stride, begin, end);
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
    const int k_count = num_labels, stride = padded(k_count);
    s.neg_unary.resize(n * stride);
    s.q.resize(n * stride);
    s.q_next.resize(n * stride);
    // Q0 = softmax(-U). Energies are clamped to +-1e30 (an infinite energy is a zero
    // probability); NaN is refused.
    std::atomic<bool> has_nan{false};
    detail::with_blocks(stride / 4, [&](auto blocks) {
        constexpr int B = decltype(blocks)::value;
        s.pool.parallel_for(n, 4096, [&](int64_t begin, int64_t end) {
            Vec4 l[B ? B : detail::kMaxBlocks] = {};
            for (int64_t i = begin; i < end; ++i) {
                float* u = s.neg_unary.data() + i * stride;
                for (int k = 0; k < stride; ++k) {
                    const float e = k < k_count ? -unary[k * n + i] : kPadLogit;
                    if (std::isnan(e)) has_nan = true;
                    u[k] = std::clamp(e, kPadLogit, -kPadLogit);
                }
                for (int b = 0; b < stride / 4; ++b) l[b] = load4(u + 4 * b);
                softmax<B>(l, stride / 4);
                for (int b = 0; b < stride / 4; ++b) store4(s.q.data() + i * stride + 4 * b, l[b]);
            }
        });
    });
    if (has_nan) throw Error("dense CRF: unary energies contain NaN");
    for (int it = 0; it < iterations; ++it) s.iterate(k_count);
    s.pool.parallel_for(n, 4096, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i)
            for (int k = 0; k < k_count; ++k) q_out[k * n + i] = s.q[i * stride + k];
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
