// The audit's measuring step on images already in memory: explain each labelled class of each
// image with one method and measure the map against the object mask. audit_model runs it on
// every batch of a dataset; the Python API runs it on tensors.
#pragma once

#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <torch/script.h>

#include "sightline/audit.hpp"
#include "sightline/explain.hpp"

namespace sightline {

struct AuditImage {
    std::string id;           // the record's id (a file stem)
    std::string source;       // names the image in messages (its path)
    std::string version;      // "matched" | "swapped" | "context" (synthetic scenes), else ""
    torch::Tensor x;          // [1,3,H,W] model input
    cv::Mat mask;             // CV_8UC1 class ids (0 background, 255 ignore); maps are resized to it
    cv::Mat context;          // CV_8UC1 (0 = no context) of the mask's size, or empty
    std::vector<int> labels;  // class ids (>= 1) to audit; model output = id - 1
};

// Explains the images (all of one input size) for each labelled class -- with `predicted`, the
// top-1 class's map instead, measured against each labelled object -- and returns one record
// per (image, label), in image order then class order. Error naming the source for a label
// outside the model's outputs or a context mask of another size than the mask.
std::vector<AuditRecord> audit_images(Explainer& explainer, const Classifier& model, const std::string& method,
                                      bool predicted, const AuditThresholds& thresholds,
                                      const std::vector<AuditImage>& images);

}  // namespace sightline
