// The model audit (`sightline audit`): does a classifier use the object, or its context?
//
// A faithful explanation (CAM on a GAP -> Linear head, HiResCAM on any head linear in the
// activations) shows which locations the *model* used for a class. Comparing it with the
// object mask therefore measures the model, not the explanation method: a faithful map of a
// model that recognises boats by their water lies on the water, and it should. The audit never
// ranks explanation methods (AuditOptions::rank_methods is refused with the reason).
//
// Per image and labelled class c (the map explains class c, whatever the model predicted):
//   regions over the labelled pixels (mask != 255; ignore pixels count nowhere):
//     object    = mask == c
//     context   = context mask != 0 outside the object (synthetic scenes: the pixels showing
//                 some class's context, e.g. water); absent without a context mask
//     elsewhere = the rest (neutral filler, other objects; everything outside the object when
//                 there is no context mask)
//   area fraction  a_R = |R| / |labelled pixels|
//   mass fraction  m_R = sum_R max(map, 0) / sum max(map, 0)      (NaN when the map has no
//                                                                   positive value)
//   concentration  C_R = m_R / a_R   (1 = no preference; > 1 the region draws more than its
//                                     area's share; NaN when a_R = 0)
//   IoU at threshold t: {map >= t * max(map)} against the object, at the fixed thresholds and
//     on a grid t = i / grid_steps (i = 1 .. grid_steps - 1) for the best threshold
//   pointing game (Zhang et al. 2016, arXiv:1608.00507): hit when an object pixel lies within
//     pointing_tolerance pixels of the map's maximum (first maximum in row-major order)
//
// Verdict per class (and overall), on the natural images: the "matched" version of the
// synthetic scenes, or every image of a dataset without versions; only images where the
// object is visible. Mass and area fractions are averaged over these images, then
//   C_object  = mean m_object / mean a_object
//   C_ref     = mean m_context / mean a_context      with a context mask,
//             = mean m_outside / mean a_outside      without (outside = 1 - object)
//   ratio r   = C_object / C_ref
// A coarse map cannot be sharp: a 8x8 map upsampled to 64x64 spreads a context user's mass over
// a small object inside its context, so r alone is not comparable across resolutions. The rule
// therefore compares r with the ratios of two ideal users at the map's own resolution: the
// object mask (for the context user: the reference region) area-averaged onto the map's grid
// and upsampled back as the map is (bilinear, half-pixel centres), then measured exactly as
// the map (audit_ideal_users). With r_context <= r_object the ideal users' class ratios
// (clamped to [1/100, 100] so that full-resolution maps stay finite),
//   position p = log(r / r_context) / log(r_object / r_context)
//            (0: the map of a pure context user, 1: of a pure object user)
//   p >= 0.6  "uses the object";  p <= 0.4  "uses context";  otherwise "mixed";
//   "undetermined" when no image, r is NaN or r_object <= r_context.
// The band (0.4, 0.6) around the geometric midpoint was chosen after looking at the two
// shortcut models of docs/audit.md's proof (an earlier rule, r >= 2 / r <= 1/2 at every
// resolution, called four pure context users "mixed").
// Comparing concentrations, not raw mass shares, accounts for area: a small object the model
// relies on still holds a small share of the mass, but a large share per pixel.
//
// The behaviour next to it (synthetic scenes): per class and version, the share of images
// whose top-1 prediction is the class (single-label data) or whose class probability
// sigmoid(logit) > 0.5 (multi-label data), and the mean mass fractions on the object and the
// context. On the context-only version the objects are removed, so its accuracy is how often
// the context alone gives the class.
#pragma once

#include <cstddef>
#include <array>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "sightline/core.hpp"

namespace sightline {

// ---- statistics (src/evaluate/audit_*.cpp; no LibTorch) --------------------------------------

inline constexpr double kUsesObjectPosition = 0.6;   // p >= this: "uses the object"
inline constexpr double kUsesContextPosition = 0.4;  // p <= this: "uses context"
inline constexpr double kIdealRatioLimit = 100.0;    // ideal users' ratios clamped to [1/this, this]

struct AuditThresholds {
    std::vector<double> fixed = {0.3, 0.5};  // --thresholds: IoU reported at these (0 < t < 1)
    int grid_steps = 20;                     // best threshold over t = i / grid_steps
    int pointing_tolerance = 0;              // --pointing-tolerance, pixels
};

struct IdealMasses {
    double object = std::numeric_limits<double>::quiet_NaN();
    double reference = std::numeric_limits<double>::quiet_NaN();  // context, or outside the object
};

struct AuditRecord {
    std::string id;                  // image id (file stem)
    std::string version;             // "matched" | "swapped" | "context" (synthetic), else ""
    int class_id = 0;                // labelled class measured (mask id >= 1; output = id - 1)
    int explained_id = 0;            // class whose map was measured: class_id (--target label)
                                     // or the top-1 prediction's class id (--target predicted)
    bool correct = false;            // behaviour (see the top of this header)
    double probability = 0.0;        // softmax (single-label) or sigmoid (multi-label) of the class
    bool has_context = false;        // a context mask was given
    double total_mass = 0.0;         // sum of max(map, 0) over the labelled pixels
    // Fractions in [0,1]; context_* NaN without a context mask; *_mass NaN when total_mass = 0.
    double object_area = 0.0, context_area = 0.0, elsewhere_area = 0.0;
    double object_mass = 0.0, context_mass = 0.0, elsewhere_mass = 0.0;
    // IoU with the object at AuditThresholds::fixed and at the grid; NaN without object pixels.
    std::vector<double> iou_fixed, iou_grid;
    int pointing = -1;               // 1 hit, 0 miss, -1 undefined (no object or no positive mass)
    // Mass fractions (object, reference region) of the two ideal users' maps at the map's
    // resolution (audit_ideal_users); NaN until set or when the region is empty.
    IdealMasses object_user, context_user;

    double object_concentration() const { return object_mass / object_area; }
    double context_concentration() const { return context_mass / context_area; }
};

// Statistics of one map. map: CV_32FC1 or CV_64FC1 (only max(map, 0) counts); mask: CV_8UC1
// class ids, 255 = ignore; context: CV_8UC1 (0 = no context) or empty. All the same size,
// else Error "<name>: ..." naming both sizes. class_id in 1..254.
AuditRecord audit_map(const cv::Mat& map, const cv::Mat& mask, const cv::Mat& context, int class_id,
                      const AuditThresholds& thresholds = {}, const std::string& name = "map");

// Sets r.object_user and r.context_user: the indicator of the object (of the reference region:
// the context outside the object with a context mask, else everything outside the object),
// area-averaged onto a grid of the map's size and upsampled back to the mask's size bilinearly,
// measured over the labelled pixels as audit_map measures a map. grid: the explanation's own
// size before upsampling (width x height, each >= 1). Inputs as audit_map's.
void audit_ideal_users(AuditRecord& r, const cv::Mat& mask, const cv::Mat& context, int class_id, cv::Size grid,
                       const std::string& name = "map");

// The thresholds of the best-threshold grid: i / steps, i = 1 .. steps - 1.
std::vector<double> audit_grid(const AuditThresholds& thresholds);

struct VersionBehaviour {
    std::string version;             // "matched", "swapped", "context", or "" (no versions)
    std::size_t images = 0, correct = 0;
    double accuracy = 0.0;           // correct / images
    double object_mass = 0.0;        // means over the images with a defined value (NaN if none)
    double context_mass = 0.0;
};

struct ClassAudit {
    int class_id = 0;                // 0 for the overall row
    std::string name;
    std::size_t images = 0;          // images behind the verdict
    bool has_context = false;        // C_ref is the context's (else outside the object)
    double object_area = 0.0, context_area = 0.0;           // means (NaN when undefined)
    double object_mass = 0.0, context_mass = 0.0, elsewhere_mass = 0.0;
    double object_concentration = 0.0, reference_concentration = 0.0, ratio = 0.0;
    double context_user_ratio = 0.0, object_user_ratio = 0.0;  // the ideal users' ratios (clamped)
    double position = 0.0;           // p of the rule above (NaN when undetermined)
    std::vector<double> iou_fixed;   // mean IoU at AuditThresholds::fixed
    double best_threshold = 0.0, best_iou = 0.0;  // grid threshold with the highest mean IoU
    double pointing = 0.0;           // hit rate
    std::string verdict;             // "uses the object" | "uses context" | "mixed" | "undetermined"
    std::string evidence;            // one sentence with the numbers behind the verdict
    std::vector<VersionBehaviour> behaviour;  // versions present, in order matched, swapped, context, ""
};

// Position p of ratio between the ideal users' ratios, and the verdict from it, as stated at the
// top of this header (the ideal ratios are clamped here).
double audit_position(double ratio, double context_user_ratio, double object_user_ratio);
std::string audit_verdict(double ratio, double context_user_ratio, double object_user_ratio);

struct AuditSummary {
    std::vector<ClassAudit> classes;  // object classes with at least one record, class order
    ClassAudit overall;               // all records pooled
};

// class_names: index = class id, [0] = background.
AuditSummary summarise_audit(const std::vector<AuditRecord>& records,
                             const std::vector<std::string>& class_names,
                             const AuditThresholds& thresholds = {});

// ---- auditing a model (src/audit/, links LibTorch) --------------------------------------------

// The preprocessing the audit used (resolve_model_input's answer, kept free of LibTorch types).
struct AuditPreprocessing {
    std::array<float, 3> mean{}, std{};
    int height = 0, width = 0;          // 0 = each image at its own size
    std::string source, size_source;    // as ModelInput's
    std::string note;                   // set when ImageNet's statistics were assumed
};

// One-to-one with the flags of `sightline audit`.
struct AuditOptions {
    fs::path model;                     // --model: TorchScript classifier
    std::string layer;                  // --layer: empty = the model's features/head, else automatic
    fs::path data;                      // --data: dataset root with object masks (open_dataset)
    std::vector<std::string> splits;    // --split: split names (ImageSets/Segmentation/<name>.txt) or
                                        //   split files; empty = test_matched,test_swapped,test_context
                                        //   when the data has them, else val, else the only split
    fs::path context_dir;               // --context: context masks <id>.png (a path, else under data);
                                        //   empty = data/SegmentationContext when present
    std::string target = "label";       // --target: label (each labelled class's map) | predicted
                                        //   (the top-1 class's map, measured against each labelled object)
    std::string method = "hirescam";    // --method: one registry key
    bool rank_methods = false;          // --rank-methods: refused (IoU does not rank methods)
    std::optional<std::pair<int, int>> size;       // --size HxW; unset = the model's stored size, else the image's
    std::optional<std::array<float, 3>> mean, std;  // --mean/--std; unset = the model's stored ones, else ImageNet
    int batch = 16;                     // --batch: images per forward
    AuditThresholds thresholds;
    fs::path resume_dir;                // finished batches are kept here and reused (empty: off)
    // --shard I/N: only the batches g with g % N == I (g numbers the batches of all splits in
    // order); needs resume_dir, where merge_audit_shards finds the batches' records.
    int shard_index = 0, shard_count = 1;
};

// What a shard's audit.json says about the whole job, so that its shards can be merged.
struct AuditShard {
    int index = 0, count = 1;
    std::vector<std::string> batch_files;  // per split: the stem of its batch files (<stem>.<b>.json)
    std::vector<std::size_t> split_images; // per split: its images
    int batch = 0;                         // images per batch
};

struct AuditResult {
    std::string model, layer, method, data;
    std::vector<std::string> splits;    // as given (or chosen by default)
    std::string target;                 // "label" | "predicted"
    AuditPreprocessing preprocessing;
    std::string head;                   // head description from the analysis
    bool trustworthy = false;           // the method's guarantee holds for this model
    std::string guarantee;              // guarantee_status statement
    std::vector<std::string> class_names;  // [0] = background
    std::size_t images = 0;             // images read
    std::size_t unlabelled = 0;         // images without a label (nothing to explain)
    std::vector<AuditRecord> records;   // split order, then class order
    AuditSummary summary;
    AuditThresholds thresholds;
    AuditShard shard;                   // count > 1: a shard's result (its batches only)
};

// Loads the model, explains every labelled class of every image of the splits with the method,
// and summarises. Checks before the work: one method key (a list or rank_methods throws
// UsageError saying why), the layer, the model's class count against the data's, mask and
// context-mask sizes against their images (naming both files). progress(done, total) counts
// images. The result is the same whether or not batches came from resume_dir.
AuditResult audit_model(const AuditOptions& options,
                        const std::function<void(std::size_t, std::size_t)>& progress = {});

// The folders of the N shards of one audit (`audit --shard I/N --out DIR`, each DIR holding
// audit.json and its batches under DIR/.sightline/audit) joined into the result a single run
// gives, record for record. Throws Error naming the folder when a shard is missing, repeated,
// of another job, or lacks a batch.
AuditResult merge_audit_shards(const std::vector<fs::path>& shard_dirs);

// Where `sightline audit --out DIR` keeps its finished batches (AuditOptions::resume_dir).
fs::path audit_batches_dir(const fs::path& out);

// ---- report (src/evaluate/audit_outputs.cpp) ---------------------------------------------------

// The stdout table: one row per class and the overall row, the behaviour per version, and a
// NOT TRUSTWORTHY line first when the guarantee does not hold.
std::string format_audit_table(const AuditResult& result);
// audit.json's content: the result, its summary and every record.
nlohmann::json audit_json(const AuditResult& result);
// <dir>/audit.json (everything, records included), <dir>/audit.csv (one row per class and
// "all"), <dir>/audit_records.csv (one row per image and class); each written atomically.
void write_audit_outputs(const fs::path& dir, const AuditResult& result);

}  // namespace sightline
