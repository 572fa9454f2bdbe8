// Instance segmentation with Mask R-CNN on image files (`sightline instance`): the model card
// that travels with a state_dict, the tensors of instance samples, and the outputs (COCO
// results, instance-id PNGs, overlays).
//
// The model card is a JSON file next to the weights (model.pth -> model.json): a torchvision
// state_dict holds no configuration, and a wrong depth or class count only shows as shape
// errors. Keys (docs/mask-rcnn.md): "depth" and "num_classes" (required), "class_names"
// (num_classes names, background first), "category_ids" (COCO category of each class id,
// [0] = 0), and any MaskRCNNConfig field under its own name ("min_size", "box_score_thresh", ...).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <torch/torch.h>

#include "sightline/coco.hpp"
#include "sightline/core.hpp"
#include "sightline/instances.hpp"
#include "sightline/maskrcnn.hpp"

namespace sightline {

class DistributedGroup;  // distributed.hpp

struct InstanceModelCard {
    MaskRCNNConfig config;
    std::vector<std::string> class_names;  // num_classes names, [0] = "background"
    std::vector<int64_t> category_ids;     // COCO category id of each class id, [0] = 0
};

// Reads a card. Throws Error "<file>: <problem>" for a missing file, malformed JSON, an unknown
// key, a value of the wrong type, a missing depth or num_classes, a configuration that
// validate() refuses, or class_names / category_ids of another length than num_classes.
// Absent class_names become "background", "class_1", ...; absent category_ids 0, 1, 2, ...
InstanceModelCard read_instance_model_card(const fs::path& path);
// Every key, pretty-printed, ending in a newline.
std::string instance_model_card_json(const InstanceModelCard& card);
// Where a model's card is looked for without --config: the weights' path with .json.
fs::path default_card_path(const fs::path& weights);
// The card of a model trained on `data`: its class names and COCO category ids.
InstanceModelCard card_for_dataset(const MaskRCNNConfig& config, const InstanceDataset& data);

// ---- tensors -------------------------------------------------------------------------------------

// CV_8UC3 RGB -> [3,H,W] float32 in [0,1] (what detect() and losses() take).
torch::Tensor rgb_to_tensor(const cv::Mat& rgb);
// The sample's objects as the model's target: boxes [G,4] float32, labels [G] int64, masks
// [G,H,W] uint8; crowd regions are left out, as torchvision's detection recipe trains.
InstanceTarget instance_target(const InstanceSample& sample);

// ---- outputs -------------------------------------------------------------------------------------

// One image's detections as COCO results: category_ids[label], bbox [x0, y0, x1 - x0, y1 - y0],
// score, segmentation = the pasted mask > 0.5 (torchvision's references/detection/coco_eval.py)
// as an RLE. In detection order (descending score).
std::vector<CocoDetection> coco_results_of(const InstanceDetections& detections, int64_t image_id,
                                           const std::vector<int64_t>& category_ids);
// Instance ids (CV_8UC1, 0 = none): the detections with score >= min_score in order get ids
// 1, 2, ... (at most 254); where masks (> 0.5) overlap the higher score wins.
cv::Mat instance_id_image(const InstanceDetections& detections, double min_score);
// The semantic label map of the same detections: each pixel of a kept instance takes its class
// id (the model's label, class_names' index; the higher score wins where masks overlap), 0
// elsewhere, so that `sightline eval` scores Mask R-CNN against semantic masks.
cv::Mat class_id_image(const InstanceDetections& detections, double min_score);
// The image with each instance of `ids` (instance_id_image's, same min_score) tinted in its
// id's VOC colour (the PNG's palette), its box outlined and "<class name> <score>" written at
// the box's top-left corner.
cv::Mat instance_overlay(const cv::Mat& rgb, const cv::Mat& ids, const InstanceDetections& detections,
                         const std::vector<std::string>& class_names, double min_score);

// ---- `sightline instance` --------------------------------------------------------------------------

// One-to-one with the flags.
struct InstanceOptions {
    fs::path model;          // --model: state_dict .pth (torch.save(model.state_dict()) or Sightline's)
    fs::path config;         // --config: model card JSON; empty = default_card_path(model)
    fs::path input;          // --input: image or folder
    fs::path coco;           // --coco: a COCO file whose images (file_name under --input) and ids to use
    fs::path out;            // --out: folder
    double score_threshold = 0.5;  // --score-threshold: for the PNGs and overlays (results.json keeps all)
    bool overlay = true;     // --no-overlay
    fs::path semantic;       // --semantic DIR: also <stem>.png of class ids there (class_id_image)
};

struct InstanceSummary {
    std::size_t images = 0, detections = 0;
    double seconds = 0;
};

// Writes OUT/results.json (COCO results of every image), OUT/images.json (the COCO "images"
// list: id, file_name, height, width), OUT/<stem>.png (instance ids, VOC palette) and
// OUT/<stem>_overlay.png. Image ids: --coco's, else 1-based positions in the sorted inputs.
// Everything (card, weights, every image, --out) is checked before the first file is written;
// each file is written atomically. progress(done, total).
InstanceSummary segment_instances(const InstanceOptions& options,
                                  const std::function<void(std::size_t, std::size_t)>& progress = {});

// ---- `sightline train instance` ---------------------------------------------------------------------

// One-to-one with the flags. The recipe is torchvision's references/detection (SGD momentum 0.9,
// weight decay 1e-4, linear warm-up over the first epoch's min(warmup_iters, steps - 1) steps from
// warmup_factor, then x lr_gamma at each epoch of lr_steps; horizontal flip p = 0.5; images
// without objects left out of training), from random weights (all five backbone stages train).
struct InstanceTrainOptions {
    fs::path data;                 // --data: VOC folder with SegmentationObject/ (or a COCO .json)
    fs::path val_data;             // --val-data: a COCO .json for validation (default: --data's val split)
    fs::path out;                  // --out: RUN folder
    fs::path init;                 // --init: start from a torchvision state_dict (init_from_state_dict)
    int64_t depth = 50;
    int64_t min_size = 800, max_size = 1333;
    // Multi-scale training (MaskRCNNConfig::train_min_sizes): empty = min_size only.
    std::vector<int64_t> train_min_sizes;
    // Proposal counts and training samplers (MaskRCNNConfig's fields of the same names, torchvision's
    // defaults). The test-time top-n go into the model card, so `sightline instance` uses them too.
    int64_t rpn_pre_nms_top_n_train = 2000, rpn_post_nms_top_n_train = 2000;
    int64_t rpn_pre_nms_top_n_test = 1000, rpn_post_nms_top_n_test = 1000;
    int64_t rpn_batch_size_per_image = 256, box_batch_size_per_image = 512;
    int64_t epochs = 26;
    int64_t batch = 2;
    double lr = 0.02;
    double momentum = 0.9;
    double weight_decay = 1e-4;
    std::vector<int64_t> lr_steps = {16, 22};
    double lr_gamma = 0.1;
    int64_t warmup_iters = 1000;
    double warmup_factor = 1e-3;
    bool flip = true;
    std::string train_split = "train";
    std::string val_split = "val";  // "none": no validation
    uint64_t seed = 1;
    bool resume = false;
    int64_t stop_after_epoch = 0;  // debug: stop as if killed after this epoch
    int64_t stop_after_step = 0;   // debug: stop as if interrupted after this many steps of the run
    // Data-parallel training (distributed.hpp): null for one process. Each rank takes an equal
    // share of every step's images (the last, partial batch of an epoch is then dropped).
    std::shared_ptr<DistributedGroup> distributed;
};

struct InstanceEpochMetrics {
    int64_t epoch = 0, epochs = 0;
    double loss = 0, lr = 0, seconds = 0;
    double val_mask_ap = -1, val_box_ap = -1;  // -1 without validation
    bool best = false;
};

struct InstanceTrainResult {
    int64_t epochs_done = 0;
    int64_t step_in_epoch = 0;     // steps of the unfinished epoch in the checkpoint (0: none)
    bool stopped = false;          // stopped early: stop_requested, stop_after_epoch or stop_after_step
    double best_mask_ap = -1;
    int64_t best_epoch = 0;
};

// Trains and writes RUN/model.pth + model.json (last epoch, when finished), RUN/best.pth +
// best.json (best val mask AP), RUN/metrics.jsonl and RUN/checkpoint/checkpoint.pt after every
// epoch and when stop_requested() says stop after a step (exact resume with options.resume,
// also in the middle of an epoch: same options required). Bad options, data or an existing run
// without --resume: Error before anything is written. The next step's images are read on a
// worker thread while a step trains.
// on_message: one line when --init loaded weights (what it took and skipped).
InstanceTrainResult train_instance(const InstanceTrainOptions& options,
                                   const std::function<void(const InstanceEpochMetrics&)>& on_epoch = {},
                                   const std::function<void(const std::string&)>& on_message = {},
                                   const std::function<bool()>& stop_requested = {});

// torchvision's learning rate at `step` (0-based) of `epoch` (0-based).
double instance_learning_rate(const InstanceTrainOptions& options, int64_t epoch, int64_t step, int64_t steps_per_epoch);

}  // namespace sightline
