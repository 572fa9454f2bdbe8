// Mean-field inference of the fully connected CRF (Kraehenbuehl & Koltun 2011, Algorithm 1).
#include <algorithm>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "crf/kernels.hpp"
#include "crf/thread_pool.hpp"
#include "sightline/crf.hpp"

namespace sightline {
namespace {

// exp(x) for x <= 0 with Cephes' expf polynomial (2 ulp): branch-free, so the compiler
// vectorises the softmax loop (a libm call per value would cost as much as the lattice
// filtering for 21 labels). Results below 2^-126 (x < -87.3) are 0.
inline float exp_nonpositive(float x) {
    // Adding 1.5 * 2^23 rounds x / ln 2 to an integer n held in the low mantissa bits.
    const float shifted = x * 1.44269504088896341f + 12582912.f;
    const float n = shifted - 12582912.f;
    float r = x - n * 0.693359375f;  // ln 2 in two parts, so r is exact
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float y = p * (r * r) + r + 1.f;
    int32_t ni;
    std::memcpy(&ni, &shifted, sizeof ni);
    ni -= 0x4B400000;  // the bits of 1.5 * 2^23
    const uint32_t scale_bits = static_cast<uint32_t>(ni + 127) << 23;  // 2^n
    float scale;
    std::memcpy(&scale, &scale_bits, sizeof scale);
    const float v = y * scale;
    uint32_t v_bits;
    std::memcpy(&v_bits, &v, sizeof v_bits);
    v_bits &= 0u - static_cast<uint32_t>(ni >= -126);  // a mask, not a branch
    float out;
    std::memcpy(&out, &v_bits, sizeof out);
    return out;
}

// Q_i = exp(l_i - max l_i) / sum, as the peer's expAndNormalize.
inline void softmax(float* __restrict l, int k_count) {
    float top = l[0];
    for (int k = 1; k < k_count; ++k) top = std::max(top, l[k]);
    for (int k = 0; k < k_count; ++k) l[k] = exp_nonpositive(l[k] - top);
    float sum = 0;
    for (int k = 0; k < k_count; ++k) sum += l[k];
    for (int k = 0; k < k_count; ++k) l[k] /= sum;
}

// Label rows are padded with zeros to a multiple of 4 for the lattice's vector kernels.
inline int padded(int k_count) { return (k_count + 3) / 4 * 4; }

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
    std::vector<float> features, neg_unary, q, q_next;

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

// One mean-field step: message passing (splat, blur, slice of n .* Q for each kernel),
// Potts compatibility (a positive smoothing weight per kernel, the shared sum over labels
// cancels in the normalisation), adding the unary and normalising. Per pixel:
//   Q_i = softmax(-U_i + w_g n_i Lg(n .* Q)_i + w_b n_i Lb(n .* Q)_i)
void DenseCrf::Impl::iterate(int k_count) {
    auto& lg = gaussian.lattice;
    auto& lb = bilateral.lattice;
    const int stride = padded(k_count);
    lg.prepare_values(stride, k_count);
    lb.prepare_values(stride, k_count);
    // Message passing (K&K 2011, Algorithm 1, step 2): splat n .* Q into both lattices.
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
    const int n = height * width;
    const float wg = gaussian.weight, wb = bilateral.weight;
    pool.parallel_for(n, 1024, [&](int64_t begin, int64_t end) {
        float sg[256], sb[256];
        for (int64_t i = begin; i < end; ++i) {
            lg.slice_pixel(static_cast<int>(i), sg);
            lb.slice_pixel(static_cast<int>(i), sb);
            const float ng = gaussian.norm[i], nb = bilateral.norm[i];
            const float* u = neg_unary.data() + i * stride;
            float* l = q_next.data() + i * stride;
            for (int k = 0; k < k_count; ++k) {
                // The peer adds -compat(K(Q)) = +w * (n * slice) term by term in this order.
                l[k] = u[k] + wg * (sg[k] * ng);
                l[k] = l[k] + wb * (sb[k] * nb);
            }
            softmax(l, k_count);
        }
    });
    q.swap(q_next);
}

void DenseCrf::infer(const float* unary, int num_labels, float* q_out, int iterations) {
    Impl& s = *impl_;
    if (s.height == 0) throw Error("dense CRF: infer() called before set_image()");
    if (num_labels < 1 || num_labels > 256)
        throw Error(fmt::format("dense CRF: number of labels must be 1..256, got {}", num_labels));
    if (iterations < 0) iterations = s.options.iterations;
    const int n = s.height * s.width, k_count = num_labels, stride = padded(k_count);
    // Pixel-major inside (the K values of a pixel contiguous, zero padding), planar outside.
    s.neg_unary.assign(size_t(n) * stride, 0.f);
    s.q.assign(size_t(n) * stride, 0.f);
    s.q_next.assign(size_t(n) * stride, 0.f);
    s.pool.parallel_for(n, 4096, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
            for (int k = 0; k < k_count; ++k) s.neg_unary[i * stride + k] = -unary[int64_t(k) * n + i];
            std::copy_n(s.neg_unary.data() + i * stride, k_count, s.q.data() + i * stride);
            softmax(s.q.data() + i * stride, k_count);
        }
    });
    for (int it = 0; it < iterations; ++it) s.iterate(k_count);
    s.pool.parallel_for(n, 4096, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i)
            for (int k = 0; k < k_count; ++k) q_out[int64_t(k) * n + i] = s.q[i * stride + k];
    });
}

std::vector<float> DenseCrf::infer(const std::vector<float>& unary, int num_labels, int iterations) {
    const size_t n = size_t(impl_->height) * impl_->width;
    if (num_labels < 1 || unary.size() != n * num_labels)
        throw Error(fmt::format("dense CRF: unary has {} values, expected K x H x W = {} x {} x {}",
                                unary.size(), num_labels, impl_->height, impl_->width));
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
        if (!(v > 0) || !std::isfinite(v))
            throw UsageError(fmt::format("{}: {} must be > 0, got {}", flag, name, v));
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
