// COCO instance evaluation, exactly as pycocotools' COCOeval (cocodataset/cocoapi): run-length
// encoded masks, polygon rasterisation, the COCO JSON formats, mask / box AP and AR.
//
// Conventions (stated once here):
//   - A mask is h x w binary. An Rle stores it in COLUMN-MAJOR order (pixel (y, x) is element
//     x * h + y) as run lengths that alternate 0s and 1s, starting with 0s (the first count may
//     be 0). Counts always sum to h * w. cv::Mat masks are CV_8UC1, row-major, nonzero = 1.
//   - A box is [x, y, width, height] in pixels (COCO's "bbox"), doubles.
//   - Compressed RLE strings are pycocotools' (rleToString): 6 bits per char, chars 48..111,
//     each count after the second stored as the difference to the count two before it.
//   - Polygons are [x1, y1, x2, y2, ...] in pixel coordinates (pixel centres at integer + 0.5
//     in COCO's convention); rasterised as rleFrPoly does (5x upsampling, rounding), not as
//     cv::fillPoly.
// Evaluation parameters are pycocotools' defaults: IoU thresholds linspace(.5, .95, 10),
// recall thresholds linspace(0, 1, 101), maxDets 1/10/100, areas all [0, 1e10], small
// [0, 32^2], medium [32^2, 96^2], large [96^2, 1e10] (inclusive bounds), categories separate.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "sightline/core.hpp"

namespace sightline {

using CocoBox = std::array<double, 4>;  // x, y, width, height

// ---- run-length encoded masks (maskApi.c) ---------------------------------------------------

struct Rle {
    uint32_t h = 0, w = 0;
    std::vector<uint32_t> counts;  // column-major runs, 0s first
};

// Encodes a CV_8UC1 mask (nonzero = 1).
Rle rle_encode(const cv::Mat& mask);
// Encodes h * w column-major bytes (nonzero = 1).
Rle rle_encode_column_major(const uint8_t* data, uint32_t h, uint32_t w);
// CV_8UC1, values 0 / 1.
cv::Mat rle_decode(const Rle& rle);
// Number of 1 pixels.
uint64_t rle_area(const Rle& rle);
// Union (or intersection) of masks of one size; throws Error when the sizes differ. One mask
// is returned as it is; none gives an empty 0 x 0 Rle.
Rle rle_merge(const std::vector<Rle>& rles, bool intersect = false);
// |dt ∩ gt| / |dt ∪ gt|, or |dt ∩ gt| / |dt| when gt is a crowd region; 0 when they do not
// meet. Throws Error when the sizes differ.
double rle_iou(const Rle& dt, const Rle& gt, bool gt_is_crowd);
// The bounding box as pycocotools' rleToBbox computes it (a run that wraps to the next column
// widens the box to the full height); [0, 0, 0, 0] for an empty mask.
CocoBox rle_to_bbox(const Rle& rle);

// Compressed counts string <-> Rle. rle_from_string throws Error ("compressed RLE: ...") for a
// character outside '0'..'o', a truncated last count, a negative run or counts that do not
// sum to h * w.
std::string rle_to_string(const Rle& rle);
Rle rle_from_string(const std::string& counts, uint32_t h, uint32_t w);

// One polygon (xy: x1, y1, x2, y2, ...; at least 3 points) rasterised as rleFrPoly; parts
// outside the h x w image are clipped. Time and memory grow with the outline's length in
// pixels (the readers refuse points more than an image size outside the image).
Rle rle_from_polygon(const std::vector<double>& xy, uint32_t h, uint32_t w);

// Box IoU as bbIou: intersection / union, or intersection / dt area when gt is a crowd region;
// 0 when the boxes do not overlap (zero-width boxes never overlap).
double box_iou(const CocoBox& dt, const CocoBox& gt, bool gt_is_crowd);

// ---- COCO JSON ------------------------------------------------------------------------------

struct CocoImage {
    int64_t id = 0;
    int height = 0, width = 0;
    std::string file_name;
};

struct CocoCategory {
    int64_t id = 0;
    std::string name;
};

struct CocoAnnotation {
    int64_t id = 0, image_id = 0, category_id = 0;
    bool iscrowd = false;
    double area = 0;  // the file's "area": what the area ranges use (not the mask's)
    CocoBox bbox{};
    std::optional<Rle> mask;  // "segmentation" (polygons merged), image-sized; absent if none
};

struct CocoDataset {
    fs::path source;
    std::vector<CocoImage> images;          // file order
    std::vector<CocoCategory> categories;   // file order
    std::vector<CocoAnnotation> annotations;  // file order
};

// Reads a COCO instance file: images (id, height, width), categories (id, name), annotations
// (id, image_id, category_id, area, bbox, optional iscrowd = 0 and segmentation as polygons,
// uncompressed or compressed RLE). Throws one Error line "<file>: <problem>" for malformed
// JSON, a missing or empty images / annotations / categories list, duplicate ids, an image_id
// or category_id that is not listed, a negative or non-finite box or area, a polygon with
// fewer than 3 points, lying entirely outside its image or with a point more than an image
// size outside it, an RLE whose size differs from its image or whose counts do not sum to
// height x width.
CocoDataset read_coco_dataset(const fs::path& path);

// Writes a ground-truth file that read_coco_dataset reads back to the same dataset, atomically:
// images (id, file_name, height, width), categories (id, name), annotations (id, image_id,
// category_id, iscrowd, area, bbox and, when set, segmentation as compressed RLE).
void write_coco_dataset(const fs::path& path, const CocoDataset& dataset);

struct CocoDetection {
    int64_t image_id = 0, category_id = 0;
    double score = 0;
    std::optional<CocoBox> bbox;
    std::optional<Rle> mask;
    // As pycocotools' loadRes: bbox width x height when the FIRST result of the file has a
    // bbox (then every result must have one), otherwise the mask area.
    double area = 0;
};

struct CocoResults {
    fs::path source;
    std::vector<CocoDetection> detections;     // file order, unknown categories left out
    std::size_t skipped_unknown_category = 0;  // results whose category_id is not in the GT
};

// Reads a results file: a JSON list of {image_id, category_id, score, bbox and/or
// segmentation}. As pycocotools, results whose category is not a GT category are skipped
// (counted); a result for an image that is not in the GT, a missing or non-finite score, a
// negative box, a mask whose size differs from its image, or a result without the bbox
// (box-area files) or segmentation (mask-area files) the file needs throws one Error line.
// An empty list is valid (nothing detected).
CocoResults read_coco_results(const fs::path& path, const CocoDataset& gt);

// Writes results as a JSON list (image_id, category_id, score, bbox when set, segmentation
// as compressed RLE when set), atomically.
void write_coco_results(const fs::path& path, const std::vector<CocoDetection>& detections);

// ---- COCOeval -------------------------------------------------------------------------------

enum class CocoIouType { segm, bbox };
// "segm" / "bbox"; parse_coco_iou_type throws UsageError for anything else.
const char* coco_iou_type_name(CocoIouType type);
CocoIouType parse_coco_iou_type(const std::string& name);

// COCOeval.stats in pycocotools' order: AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs,
// ARm, ARl.
inline constexpr std::array<const char*, 12> kCocoStatNames = {
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"};

struct CocoCategoryAp {
    int64_t id = 0;
    std::string name;
    // Area "all", maxDets 100, averaged over recall points (and IoU thresholds for ap);
    // -1 when the category has no non-crowd ground truth, as pycocotools.
    double ap = -1, ap50 = -1, ap75 = -1;
};

struct CocoEvalResult {
    CocoIouType iou_type = CocoIouType::segm;
    std::array<double, 12> stats{};             // -1 where pycocotools gives -1
    std::vector<CocoCategoryAp> per_category;  // ascending category id
};

// COCOeval.evaluate(); accumulate(); summarize() with default parameters. Segm needs every
// annotation to have a segmentation (Error naming the annotation otherwise); results without
// a mask are evaluated with their box as a polygon, as loadRes does.
CocoEvalResult evaluate_coco(const CocoDataset& gt, const CocoResults& results, CocoIouType type);

// pycocotools' 12 summary lines (" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all |
// maxDets=100 ] = 0.186"), each ending in '\n'.
std::string format_coco_summary(const CocoEvalResult& result);

// Writes <dir>/coco_eval.json atomically: per IoU type the 12 stats by name
// ({"segm": {"AP": ..., ...}, "bbox": {...}}), "per_category" (per IoU type a list of
// {id, name, AP, AP50, AP75}) and "inputs" (files, counts, skipped results).
void write_coco_eval_json(const fs::path& dir, const std::vector<CocoEvalResult>& results,
                          const CocoDataset& gt, const CocoResults& detections);

}  // namespace sightline
