// ROAD's noisy linear imputer (Rong et al. 2022, arXiv:2202.00449, section 4; the version in
// pytorch-grad-cam's metrics/road.py). A removed pixel i takes the weighted mean of its in-image
// neighbours: (sum_j w_j) x_i - sum_{j removed} w_j x_j = sum_{j kept} w_j v_j, with w = 1/6
// for the 4-neighbours and 1/12 for the diagonals. The matrix is a weighted graph Laplacian
// plus a positive diagonal wherever a kept pixel is adjacent, so it is symmetric positive
// definite as long as every removed region touches a kept pixel; conjugate gradients solve it.
// A removed 8-connected region always touches a kept pixel unless it is the whole image (a
// constant map, or ties at the percentile threshold, as when a ReLU'd map is zero on more than
// p % of the image). Then the system is the bare Laplacian, singular, with a zero right-hand
// side: every constant solves it, and we take the minimum-norm one, 0 (the dataset mean colour
// in a normalised input). The reference's scipy spsolve returns NaN there.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "sightline/sanity.hpp"

namespace sightline {

namespace {

struct Neighbour {
    int dy, dx;
    double w;
};
constexpr Neighbour kNeighbours[8] = {{1, 1, 1.0 / 12}, {0, 1, 1.0 / 6},   {-1, 1, 1.0 / 12}, {1, -1, 1.0 / 12},
                                      {0, -1, 1.0 / 6}, {-1, -1, 1.0 / 12}, {1, 0, 1.0 / 6},   {-1, 0, 1.0 / 6}};

// The system in compressed rows: unknowns are the removed pixels in raster order.
struct System {
    std::vector<int64_t> pixel;            // unknown -> pixel index
    std::vector<double> diag;              // sum of in-image neighbour weights
    std::vector<int64_t> row_start, col;   // off-diagonal entries (removed neighbours)
    std::vector<double> val;               // their weights (entries are -w)
    std::vector<double> rhs;               // [unknown][channel]: sum over kept neighbours of w v
};

System build(const torch::Tensor& img, const torch::Tensor& keep) {
    const int64_t c = img.size(0), h = img.size(1), w = img.size(2);
    torch::Tensor im = img.to(torch::kFloat64).contiguous(), k = keep.to(torch::kFloat64).contiguous();
    const double* v = im.data_ptr<double>();
    const double* kp = k.data_ptr<double>();
    System s;
    std::vector<int64_t> unknown(h * w, -1);
    for (int64_t p = 0; p < h * w; ++p)
        if (kp[p] == 0) {  // as the reference: exactly zero means removed
            unknown[p] = static_cast<int64_t>(s.pixel.size());
            s.pixel.push_back(p);
        }
    const int64_t n = static_cast<int64_t>(s.pixel.size());
    s.diag.assign(n, 0.0);
    s.rhs.assign(n * c, 0.0);
    s.row_start.push_back(0);
    for (int64_t i = 0; i < n; ++i) {
        const int64_t y = s.pixel[i] / w, x = s.pixel[i] % w;
        for (const Neighbour& nb : kNeighbours) {
            const int64_t yy = y + nb.dy, xx = x + nb.dx;
            if (yy < 0 || xx < 0 || yy >= h || xx >= w) continue;  // dropped from the normaliser
            s.diag[i] += nb.w;
            const int64_t q = yy * w + xx;
            if (kp[q] > 0.5) {
                for (int64_t ch = 0; ch < c; ++ch) s.rhs[i * c + ch] += nb.w * v[ch * h * w + q];
            } else {
                s.col.push_back(unknown[q]);
                s.val.push_back(nb.w);
            }
        }
        s.row_start.push_back(static_cast<int64_t>(s.col.size()));
    }
    return s;
}

// y = A x for one channel.
void multiply(const System& s, const std::vector<double>& x, std::vector<double>& y) {
    const int64_t n = static_cast<int64_t>(s.diag.size());
    for (int64_t i = 0; i < n; ++i) {
        double acc = s.diag[i] * x[i];
        for (int64_t e = s.row_start[i]; e < s.row_start[i + 1]; ++e) acc -= s.val[e] * x[s.col[e]];
        y[i] = acc;
    }
}

// Jacobi-preconditioned conjugate gradients to a relative residual of 1e-10.
std::vector<double> solve(const System& s, const std::vector<double>& b) {
    const int64_t n = static_cast<int64_t>(b.size());
    std::vector<double> x(n, 0.0), r = b, z(n), p(n), q(n);
    double bnorm = 0;
    for (double v : b) bnorm += v * v;
    bnorm = std::sqrt(bnorm);
    if (bnorm == 0) return x;
    for (int64_t i = 0; i < n; ++i) z[i] = r[i] / s.diag[i];
    p = z;
    double rz = 0;
    for (int64_t i = 0; i < n; ++i) rz += r[i] * z[i];
    for (int64_t it = 0; it < 10 * n + 100; ++it) {
        multiply(s, p, q);
        double pq = 0;
        for (int64_t i = 0; i < n; ++i) pq += p[i] * q[i];
        if (pq <= 0) break;
        const double alpha = rz / pq;
        double rnorm = 0;
        for (int64_t i = 0; i < n; ++i) {
            x[i] += alpha * p[i];
            r[i] -= alpha * q[i];
            rnorm += r[i] * r[i];
        }
        if (std::sqrt(rnorm) <= 1e-10 * bnorm) break;
        double rz_next = 0;
        for (int64_t i = 0; i < n; ++i) {
            z[i] = r[i] / s.diag[i];
            rz_next += r[i] * z[i];
        }
        const double beta = rz_next / rz;
        rz = rz_next;
        for (int64_t i = 0; i < n; ++i) p[i] = z[i] + beta * p[i];
    }
    return x;
}

void check_shapes(const torch::Tensor& img, const torch::Tensor& keep) {
    if (img.dim() != 3 || keep.dim() != 2 || keep.size(0) != img.size(1) || keep.size(1) != img.size(2))
        throw Error(fmt::format("road imputer: mask is {}x{} but the image is {}x{}", keep.size(0),
                                keep.dim() > 1 ? keep.size(1) : 0, img.size(-2), img.size(-1)));
}

torch::Tensor fill(const torch::Tensor& img, const System& s, const std::vector<std::vector<double>>& solution) {
    torch::Tensor out = img.to(torch::kFloat32).contiguous().clone();
    const int64_t c = img.size(0), hw = img.size(1) * img.size(2);
    float* o = out.data_ptr<float>();
    for (int64_t ch = 0; ch < c; ++ch)
        for (std::size_t i = 0; i < s.pixel.size(); ++i) o[ch * hw + s.pixel[i]] = static_cast<float>(solution[ch][i]);
    return out;
}

}  // namespace

torch::Tensor road_impute(const torch::Tensor& img, const torch::Tensor& keep, double noise,
                          torch::Generator generator) {
    check_shapes(img, keep);
    const System s = build(img, keep);
    const int64_t c = img.size(0), n = static_cast<int64_t>(s.pixel.size());
    std::vector<std::vector<double>> solution(c);
    for (int64_t ch = 0; ch < c; ++ch) {  // b = 0 when every pixel is removed: solve returns 0
        std::vector<double> b(n);
        for (int64_t i = 0; i < n; ++i) b[i] = s.rhs[i * c + ch];
        solution[ch] = solve(s, b);
    }
    torch::Tensor out = fill(img, s, solution);
    if (noise != 0 && n > 0) {
        // + noise * N(0,1) on the imputed values only, as the reference.
        torch::Tensor idx = torch::tensor(s.pixel);
        torch::Tensor flat = out.reshape({c, -1});
        torch::Tensor eps = generator.defined() ? torch::randn({c, n}, generator, torch::kFloat32)
                                                : torch::randn({c, n}, torch::kFloat32);
        eps = eps * noise;
        flat.index_add_(1, idx, eps);
    }
    return out;
}

torch::Tensor road_impute_dense(const torch::Tensor& img, const torch::Tensor& keep) {
    check_shapes(img, keep);
    const System s = build(img, keep);
    const int64_t c = img.size(0), n = static_cast<int64_t>(s.pixel.size());
    if (n == img.size(1) * img.size(2))  // the singular whole-image case: minimum-norm solution
        return fill(img, s, std::vector<std::vector<double>>(c, std::vector<double>(n, 0.0)));
    // Dense matrix and Gaussian elimination with partial pivoting.
    std::vector<std::vector<double>> a(n, std::vector<double>(n + c, 0.0));
    for (int64_t i = 0; i < n; ++i) {
        a[i][i] = s.diag[i];
        for (int64_t e = s.row_start[i]; e < s.row_start[i + 1]; ++e) a[i][s.col[e]] -= s.val[e];
        for (int64_t ch = 0; ch < c; ++ch) a[i][n + ch] = s.rhs[i * c + ch];
    }
    for (int64_t k = 0; k < n; ++k) {
        int64_t piv = k;
        for (int64_t i = k + 1; i < n; ++i)
            if (std::abs(a[i][k]) > std::abs(a[piv][k])) piv = i;
        std::swap(a[k], a[piv]);
        for (int64_t i = k + 1; i < n; ++i) {
            double f = a[i][k] / a[k][k];
            for (int64_t j = k; j < n + c; ++j) a[i][j] -= f * a[k][j];
        }
    }
    std::vector<std::vector<double>> solution(c, std::vector<double>(n));
    for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t i = n - 1; i >= 0; --i) {
            double acc = a[i][n + ch];
            for (int64_t j = i + 1; j < n; ++j) acc -= a[i][j] * solution[ch][j];
            solution[ch][i] = acc / a[i][i];
        }
    return fill(img, s, solution);
}

double percentile(std::vector<float> values, double p) {
    if (values.empty()) throw Error("percentile: no values");
    std::sort(values.begin(), values.end());
    // numpy's default 'linear' method: position p/100 * (n - 1) between sorted values.
    const double pos = p / 100.0 * static_cast<double>(values.size() - 1);
    const std::size_t lo = static_cast<std::size_t>(std::floor(pos));
    const std::size_t hi = std::min(lo + 1, values.size() - 1);
    const double frac = pos - static_cast<double>(lo);
    return values[lo] + frac * (static_cast<double>(values[hi]) - values[lo]);
}

}  // namespace sightline
