// The similarity measures of Adebayo et al. 2018 (section 3): Spearman rank correlation with
// and without absolute values, SSIM, and Pearson correlation of HOG features; plus the Sobel
// edge map they compare the failing methods with.
#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#include "sightline/sanity.hpp"

namespace sightline {

namespace {

void check_pair(const cv::Mat& a, const cv::Mat& b, const char* what) {
    if (a.type() != CV_32FC1 || b.type() != CV_32FC1)
        throw Error(fmt::format("{}: maps must be float32 single-channel", what));
    if (a.size() != b.size())
        throw Error(fmt::format("{}: maps differ in size ({}x{} and {}x{})", what, a.rows, a.cols, b.rows, b.cols));
}

std::vector<double> values(const cv::Mat& m) {
    std::vector<double> v;
    v.reserve(m.total());
    for (int r = 0; r < m.rows; ++r) {
        const float* p = m.ptr<float>(r);
        v.insert(v.end(), p, p + m.cols);
    }
    return v;
}

// Ranks 1..n, tied values share their average rank.
std::vector<double> average_ranks(const std::vector<double>& v) {
    std::vector<std::size_t> idx(v.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](std::size_t i, std::size_t j) { return v[i] < v[j]; });
    std::vector<double> rank(v.size());
    for (std::size_t s = 0; s < idx.size();) {
        std::size_t e = s;
        while (e + 1 < idx.size() && v[idx[e + 1]] == v[idx[s]]) ++e;
        double r = 0.5 * static_cast<double>(s + e) + 1.0;
        for (std::size_t k = s; k <= e; ++k) rank[idx[k]] = r;
        s = e + 1;
    }
    return rank;
}

}  // namespace

double pearson(const std::vector<double>& a, const std::vector<double>& b) {
    if (a.size() != b.size() || a.empty())
        throw Error(fmt::format("pearson: needs two equally long non-empty vectors (got {} and {})", a.size(), b.size()));
    const double n = static_cast<double>(a.size());
    double ma = std::accumulate(a.begin(), a.end(), 0.0) / n, mb = std::accumulate(b.begin(), b.end(), 0.0) / n;
    double sab = 0, saa = 0, sbb = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    if (saa <= 0 || sbb <= 0) return 0.0;  // a constant side carries no ordering
    return sab / std::sqrt(saa * sbb);
}

double spearman(const cv::Mat& a, const cv::Mat& b) {
    check_pair(a, b, "spearman");
    return pearson(average_ranks(values(a)), average_ranks(values(b)));
}

double ssim(const cv::Mat& a, const cv::Mat& b, double range) {
    check_pair(a, b, "ssim");
    const double c1 = std::pow(0.01 * range, 2), c2 = std::pow(0.03 * range, 2);
    cv::Mat x, y;
    a.convertTo(x, CV_64F);
    b.convertTo(y, CV_64F);
    if (a.rows < 11 || a.cols < 11) {
        // One window over the whole map (the Gaussian window would not fit).
        cv::Scalar mx, sx, my, sy;
        cv::meanStdDev(x, mx, sx);
        cv::meanStdDev(y, my, sy);
        double cov = cv::mean((x - mx[0]).mul(y - my[0]))[0];
        return ((2 * mx[0] * my[0] + c1) * (2 * cov + c2)) /
               ((mx[0] * mx[0] + my[0] * my[0] + c1) * (sx[0] * sx[0] + sy[0] * sy[0] + c2));
    }
    auto blur = [](const cv::Mat& m) {
        cv::Mat out;
        cv::GaussianBlur(m, out, cv::Size(11, 11), 1.5, 1.5, cv::BORDER_REFLECT_101);
        return out;
    };
    cv::Mat mx = blur(x), my = blur(y);
    cv::Mat vx = blur(x.mul(x)) - mx.mul(mx), vy = blur(y.mul(y)) - my.mul(my);
    cv::Mat cxy = blur(x.mul(y)) - mx.mul(my);
    cv::Mat num = (2 * mx.mul(my) + c1).mul(2 * cxy + c2);
    cv::Mat den = (mx.mul(mx) + my.mul(my) + c1).mul(vx + vy + c2);
    cv::Mat s;
    cv::divide(num, den, s);
    return cv::mean(s)[0];
}

double hog_pearson(const cv::Mat& a, const cv::Mat& b) {
    check_pair(a, b, "hog");
    if (a.rows < 16 || a.cols < 16)
        throw Error(fmt::format("hog: maps of {}x{} are smaller than one 16x16 HOG block", a.rows, a.cols));
    const cv::Size window((a.cols / 8) * 8, (a.rows / 8) * 8);
    cv::HOGDescriptor hog(window, cv::Size(16, 16), cv::Size(8, 8), cv::Size(8, 8), 9);
    auto features = [&](const cv::Mat& m) {
        cv::Mat u8;
        m(cv::Rect(0, 0, window.width, window.height)).convertTo(u8, CV_8U, 255.0);  // saturates to [0,255]
        std::vector<float> d;
        hog.compute(u8, d);
        return std::vector<double>(d.begin(), d.end());
    };
    return pearson(features(a), features(b));
}

double discrete_entropy(const cv::Mat& map, int bins) {
    if (map.type() != CV_32FC1 || map.empty()) throw Error("entropy: maps must be non-empty float32 single-channel");
    if (bins < 1) throw UsageError(fmt::format("entropy: bins must be at least 1 (got {})", bins));
    const std::vector<double> v = values(map);
    const auto [lo_it, hi_it] = std::minmax_element(v.begin(), v.end());
    const double lo = *lo_it, hi = *hi_it;
    if (!(hi > lo)) return 0.0;  // one value, one bin
    // numpy.histogram: edges lo + i * (hi - lo) / bins, each bin half-open but the last closed;
    // the index from the scaled value, corrected against the edges for rounding.
    const double step = (hi - lo) / bins;
    auto edge = [&](int i) { return i == bins ? hi : lo + step * i; };
    std::vector<double> counts(static_cast<std::size_t>(bins), 0.0);
    for (double x : v) {
        int i = std::min(bins - 1, static_cast<int>((x - lo) / (hi - lo) * bins));
        if (x < edge(i)) --i;
        else if (i < bins - 1 && x >= edge(i + 1)) ++i;
        counts[static_cast<std::size_t>(i)] += 1;
    }
    const double n = static_cast<double>(v.size());
    double h = 0;
    for (double c : counts)
        if (c > 0) h -= (c / n) * std::log(c / n);
    return h;
}

cv::Mat sobel_map(const cv::Mat& rgb) {
    if (rgb.type() != CV_8UC3) throw Error("sobel: expects an 8-bit RGB image");
    cv::Mat grey, gx, gy, mag;
    cv::cvtColor(rgb, grey, cv::COLOR_RGB2GRAY);
    grey.convertTo(grey, CV_32F, 1.0 / 255.0);
    cv::Sobel(grey, gx, CV_32F, 1, 0, 3);
    cv::Sobel(grey, gy, CV_32F, 0, 1, 3);
    cv::magnitude(gx, gy, mag);
    double lo, hi;
    cv::minMaxLoc(mag, &lo, &hi);
    // pytorch-grad-cam's scale_cam_image: (m - min) / (max + 1e-7) after the shift.
    mag = (mag - lo) / (hi - lo + 1e-7);
    return mag;
}

}  // namespace sightline
