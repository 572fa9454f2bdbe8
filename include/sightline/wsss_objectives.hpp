// Training objectives of the weakly supervised segmentation literature, for
// `sightline train classify --objective cam|puzzle|mixup|subcategory`. Their goal is CAMs that
// cover whole objects (judged by seed mIoU), not a better classifier. The code lives in the train
// area (src/train/objective_*.cpp) because the trainer calls it and the wsss area depends on train.
//
// Shapes: images x [B,3,S,S]; activations A = model.features(x) [B,C,h,w]; class maps
// F = W A (the GAP->Linear head's weight W [K,C] applied at every position, no bias) [B,K,h,w];
// logits [B,K]; targets y [B,K] in [0,1] (multi-hot, or convex mixtures under mixup).
// Every loss is a scalar tensor that autograd can differentiate.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

namespace sightline {

// ---- Puzzle-CAM (Jo & Yu 2021) -----------------------------------------------------------------

// Splits H and W in halves: [B,C,H,W] -> [4B,C,H/2,W/2], tile-major (all B top-left tiles,
// then top-right, bottom-left, bottom-right). H and W must be even.
torch::Tensor puzzle_tile(const torch::Tensor& x);
// The inverse: [4B,C,h,w] tile-major -> [B,C,2h,2w].
torch::Tensor puzzle_merge(const torch::Tensor& tiles);
// L_re = mean over all B*K*h*w entries of |F - F_re| * y[b,k] (only labelled classes contribute,
// the mean still divides by every entry, as the reference code does). F, F_re [B,K,h,w], y [B,K].
torch::Tensor puzzle_reconstruction_loss(const torch::Tensor& full_maps, const torch::Tensor& merged_maps,
                                         const torch::Tensor& targets);
// alpha_t = min(alpha * step / (total_steps * ramp), alpha): a linear ramp over the first `ramp`
// share of training, then constant. step is 0-based; ramp <= 0 means alpha from the start.
double puzzle_alpha(double alpha, double ramp, int64_t step, int64_t total_steps);

// ---- Mixup-CAM (Chang et al. 2020) -------------------------------------------------------------

// Mean over B*K of the binary entropy of sigmoid(logits), in nats (0 .. log 2): minimised on
// mixed images to counter the flat predictions mixup's soft labels teach.
torch::Tensor sigmoid_entropy(const torch::Tensor& logits);
// Feature-level concentration: for every (image b, class k) with y[b,k] > 0, R = ReLU(F[b,k])
// normalised to sum 1 over positions, f = A[b] L2-normalised over channels at each position,
// m = sum_u R(u) f(u), term = sum_u R(u) |f(u) - m|^2 (the response-weighted feature variance,
// 0 .. 4); the loss is the mean of the terms (0 when no class is labelled). R is a constant
// weight (no gradient flows into F): the term shapes the features under the response, and cannot
// be lowered by suppressing the response (F <= 0 everywhere would make it 0).
// A [B,C,h,w], F [B,K,h,w], y [B,K].
torch::Tensor feature_concentration_loss(const torch::Tensor& activations, const torch::Tensor& class_maps,
                                         const torch::Tensor& targets);

// ---- Sub-category CAM, SC-CAM (Chang et al. 2020) ----------------------------------------------

struct KMeansOptions {
    int k = 10;            // clusters (fewer when there are fewer points)
    int max_iterations = 300;
    int restarts = 4;      // k-means++ initialisations; the lowest inertia wins
    uint64_t seed = 0;
};
struct KMeansResult {
    std::vector<int> assignment;  // cluster of each point, 0 .. k-1
    torch::Tensor centres;        // [k,D] float64
    double inertia = 0.0;         // sum of squared distances to the assigned centre
};
// Lloyd's algorithm with k-means++ seeding (Arthur & Vassilvitskii 2007), deterministic per
// seed. points [N,D] (any float type). k is clamped to N; N must be >= 1.
KMeansResult kmeans(const torch::Tensor& points, const KMeansOptions& options);

// Sub-category labels: for every image i and every class id c >= 1 in labels[i], k-means (K per
// class) over the features of the images holding c; the result holds, per image, the cluster of
// each class (-1 for a class the image does not hold). features [N,D]; labels[i] are class ids
// (1-based), num_classes K_parent.
std::vector<std::vector<int>> subcategory_assignments(const torch::Tensor& features,
                                                      const std::vector<std::vector<int>>& labels,
                                                      int64_t num_classes, const KMeansOptions& options);
// The multi-hot sub-category targets [N, num_classes * k]: bit (c-1)*k + cluster for each class.
torch::Tensor subcategory_targets(const std::vector<std::vector<int>>& assignments, int64_t num_classes, int k);

}  // namespace sightline
