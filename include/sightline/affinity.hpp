// Inter-pixel affinity propagation for weak supervision (AffinityNet, Ahn & Kwak 2018; the
// random walk as IRN, Ahn, Cho & Kwak 2019, runs it): a network learns from the confident
// regions of the CAM seeds which nearby cells belong together, then each CAM is random-walked
// over those affinities so it spreads over its object and stops at boundaries. Conventions and
// numbers: docs/wsss.md, "Affinity propagation".
//
// Shapes, once: the walk runs on cells of stride x stride pixels (h = ceil(H / stride)). An
// embedding is [B,D,H,W] (the network's output at full resolution); cell embeddings are its
// average over each cell, [B,D,h,w]. Pixel labels are [B,H,W] int64 class ids, 255 = unknown.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "sightline/core.hpp"

namespace sightline {

struct AffinityOptions {
    int64_t radius = 5;      // --radius: pairs of cells closer than this (dy^2 + dx^2 < r^2)
    int64_t stride = 4;      // --cell: side of a cell in pixels
    double beta = 10.0;      // --beta: affinities raised to this power before the walk (IRN 10, PSA 8)
    int64_t steps = 8;       // --steps: walk steps (PSA / IRN: 256 on grids of 60-125 cells a side;
                             // 8 measured best on 16 x 16 cells, docs/wsss.md)
    int64_t embedding = 32;  // --embedding: channels of the network's output
};
// Throws UsageError naming the flag (radius < 2, stride < 1, beta <= 0, steps < 1, embedding < 1).
void validate(const AffinityOptions& options);

// The offsets (dy, dx) of the pairs within a radius, each unordered pair once: dy = 0 with
// dx > 0, and dy > 0 with any dx; 34 for radius 5 (PSA's pair set).
std::vector<std::array<int64_t, 2>> affinity_offsets(int64_t radius);

// Cell labels [B,h,w] of pixel labels [B,H,W]: a cell keeps the label all its pixels share,
// else (mixed, or partly outside the image) 255.
torch::Tensor cell_labels(const torch::Tensor& labels, int64_t stride);
// Cell embeddings [B,D,h,w]: the mean over each cell's pixels (edge cells over the pixels they have).
torch::Tensor cell_embedding(const torch::Tensor& embedding, int64_t stride);

// AffinityNet's loss on cell embeddings [B,D,h,w] and cell labels [B,h,w], over the pairs of
// affinity_offsets(radius) with a = exp(-mean over channels |f_i - f_j|): pairs with the same
// label are positive (background-background and object-object kept apart), pairs with two
// different labels negative, pairs with a 255 ignored;
//   L = L_bg/4 + L_fg/4 + L_neg/2,  L_pos = mean -log a,  L_neg = mean -log(1 - a + 1e-5)
// (a kind without pairs adds 0).
torch::Tensor affinity_loss(const torch::Tensor& cells, const torch::Tensor& labels, int64_t radius);

// The random walk of maps x [n,h,w] over cell embeddings [D,h,w]: with A_ij = a_ij^beta for
// cells closer than the radius (A_ii = 1, 0 beyond), each step replaces x_j by
// sum_i x_i A_ij / sum_i A_ij — PSA's x T with T = A^beta divided by its column sums —
// `steps` times. Returns [n,h,w].
torch::Tensor random_walk(const torch::Tensor& maps, const torch::Tensor& cells, const AffinityOptions& options);

// One image: CAMs [n,H,W] in [0,1] and the network's embedding [D,H,W] -> the CAMs averaged
// over cells, walked, resized bilinearly (half-pixel centres) to H x W and each divided by its
// maximum + 1e-5 (the CAM convention of wsss.hpp), [n,H,W].
torch::Tensor propagate_cams(const torch::Tensor& cams, const torch::Tensor& embedding, const AffinityOptions& options);

// `sightline wsss affinity`: trains the affinity network on the confident labels of a split
// (OUT/net/, the training loop of `train segment`: an interrupted run resumes) and walks every
// CAM file of the split into OUT/cams/<id>.npy (written through a staging folder), which
// `wsss sweep|seeds|pseudo --cams` read like any CAM folder.
struct AffinityRunOptions {
    fs::path data;                // --data
    std::string split = "train";  // --split
    fs::path cams;                // --cams: CAM files of the split
    fs::path labels;              // --labels: confident labels <id>.png (`wsss pseudo --confident`)
    fs::path out;                 // --out
    AffinityOptions affinity{};
    int64_t epochs = 10;          // --epochs: the network (a U-Net, `train segment`'s defaults)
    int64_t batch = 8;            // --batch
    double lr = 0.0;              // --lr: 0 = the AdamW default of `train segment`
    uint64_t seed = 1;            // --seed
};
struct AffinityRunResult {
    std::size_t images = 0;
    bool trained = false;         // false: OUT/net/model.pt existed and was reused
    fs::path network;             // OUT/net/model.pt
    fs::path cams;                // OUT/cams
};
using AffinityProgress = std::function<void(const std::string& stage, std::size_t done, std::size_t total)>;
// Checks the options, the data, every CAM file and every label file first: Error naming the
// file, nothing written.
AffinityRunResult run_affinity(const AffinityRunOptions& options, const AffinityProgress& progress = {});

}  // namespace sightline
