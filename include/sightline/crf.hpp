// Dense CRF: the fully connected CRF of Kraehenbuehl & Koltun (NIPS 2011) with a Gaussian
// (position) and a bilateral (position + colour) kernel, Potts compatibility and mean-field
// inference, filtered with the permutohedral lattice (Adams et al. 2010). Numerically it
// follows pydensecrf's defaults (symmetric kernel normalisation, float32), see docs/crf.md and
// tests/fixtures/densecrf/README.md.
//
// Shapes, once: an image is CV_8UC3, H x W, colour values 0..255 (RGB or BGR give identical
// results: both colour scales are equal). Unaries, probabilities and marginals Q are float32
// K x H x W, planar (as the .npy files), pixel n = row * W + col. K labels, 1 <= K <= 256.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "sightline/core.hpp"

namespace sightline {

struct DenseCrfOptions {
    // --gaussian SXY,COMPAT: smoothness kernel exp(-|p_i - p_j|^2 / (2 sxy^2)) (theta_gamma,
    // pixels) and its Potts weight (w2).
    float gaussian_sxy = 3.f;
    float gaussian_compat = 3.f;
    // --bilateral SXY,SRGB,COMPAT: appearance kernel
    // exp(-|p_i - p_j|^2 / (2 sxy^2) - |I_i - I_j|^2 / (2 srgb^2)) (theta_alpha, theta_beta)
    // and its Potts weight (w1).
    float bilateral_sxy = 80.f;
    float bilateral_srgb = 13.f;
    float bilateral_compat = 10.f;
    // --iterations: mean-field steps (0 returns softmax(-unary)).
    int iterations = 10;
    // --threads: threads for the lattice build and each iteration; 0 = all hardware threads.
    // Results are bitwise identical for any thread count.
    int threads = 0;
};

// Throws UsageError naming the flag when a parameter is <= 0 (iterations, threads < 0).
void validate(const DenseCrfOptions& options);

// ---- unaries (energies, -log probability) ---------------------------------------------------

// pydensecrf's unary_from_softmax: U = -log(clip(p, 1e-5, 1)), element by element.
std::vector<float> unary_from_probabilities(const std::vector<float>& probs);

// pydensecrf's unary_from_labels with zero_unsure=False, as IRN and Puzzle-CAM call it: a
// pixel's label l gets -log(confidence), every other label -log((1 - confidence) / (K - 1));
// label 255 (unknown) gets the uniform -log(1 / K). labels: CV_8UC1 H x W, values < K or 255.
// Throws Error for other values or a confidence outside (0, 1).
std::vector<float> unary_from_labels(const cv::Mat& labels, int num_labels, float confidence);

// ---- input checks (each throws Error "<source>: <problem>") ---------------------------------

// probs K x H x W: every value finite and in 0..1, each pixel's K values sum to 1 +- 1e-3.
void check_probabilities(const std::string& source, const float* probs, int num_labels, int height,
                         int width);

struct ProbabilityMaps {
    int num_labels = 0;
    std::vector<float> probs;  // K x H x W
};
// Reads a K x H x W .npy of probabilities for an image of height x width: shape, K >= 2 and
// check_probabilities.
ProbabilityMaps read_probabilities(const fs::path& path, int height, int width);

// Label map for unary_from_labels: every value < K or 255. Throws Error naming `source`.
void check_label_map(const std::string& source, const cv::Mat& labels, int num_labels);

// ---- inference ------------------------------------------------------------------------------

class DenseCrf {
public:
    explicit DenseCrf(const DenseCrfOptions& options = {});
    ~DenseCrf();
    DenseCrf(const DenseCrf&) = delete;
    DenseCrf& operator=(const DenseCrf&) = delete;

    // Builds both lattices and their normalisations for the image. Buffers are kept and
    // reused by later images and calls.
    void set_image(const cv::Mat& image);

    // Mean-field inference (K&K 2011, Algorithm 1) from unary energies (K x H x W) for the
    // image set last. Writes Q (K x H x W, sums to 1 over K). iterations < 0: the options'.
    void infer(const float* unary, int num_labels, float* q, int iterations = -1);
    std::vector<float> infer(const std::vector<float>& unary, int num_labels, int iterations = -1);

    const DenseCrfOptions& options() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// MAP labels: argmax over K of q (K x H x W), first maximum wins, as CV_8UC1 H x W.
cv::Mat labels_from_q(const float* q, int num_labels, int height, int width);

}  // namespace sightline
