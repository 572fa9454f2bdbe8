// The two pairwise terms of the image CRF: features, lattice and symmetric normalisation.
#pragma once

#include <vector>

#include <opencv2/core.hpp>

#include "crf/permutohedral.hpp"

namespace sightline::detail {

class ThreadPool;

// Features of pixel n = row * W + col, row-major: (col / sxy, row / sxy) — column first, as
// pydensecrf's addPairwiseGaussian.
void position_features(int height, int width, float sxy, std::vector<float>& out);
// (col / sxy, row / sxy, c0 / srgb, c1 / srgb, c2 / srgb) for a CV_8UC3 image.
void bilateral_features(const cv::Mat& image, float sxy, float srgb, std::vector<float>& out);

// One Potts term: Ktilde(Q) = n .* Lattice(n .* Q) with n = 1 / sqrt(Lattice(1) + 1e-20)
// (pydensecrf's NORMALIZE_SYMMETRIC; a pixel's own contribution is included).
struct PairwiseKernel {
    PermutohedralLattice lattice;
    std::vector<float> norm;  // n, per pixel
    float weight = 0;         // Potts compat w_m

    void build(const float* features, int pixels, int dim, float compat, ThreadPool& pool);
    // out = Ktilde(in), pixels x channels row-major (for tests; inference fuses the steps).
    void apply(const float* in, float* out, int channels, ThreadPool& pool);

private:
    std::vector<float> ones_, scaled_;
};

}  // namespace sightline::detail
