// COCOeval's evaluate() (pycocotools cocoeval.py computeIoU / evaluateImg): per image and
// category, the IoUs of the top 100 detections with the ground truth, and the greedy matching
// of detections in score order at each IoU threshold.
#include <algorithm>
#include <numeric>
#include <unordered_map>

#include <fmt/format.h>

#include "evaluate/coco_eval_detail.hpp"

namespace sightline::detail {

namespace {

Rle box_polygon_mask(const CocoBox& b, const CocoImage& image) {
    // loadRes gives a result without a segmentation the box as a polygon. Clamping the corners
    // to one pixel beyond the image keeps the mask (rleFrPoly clips there anyway) and the
    // outline short whatever the box.
    auto clamp_x = [&](double x) { return std::clamp(x, -1.0, image.width + 1.0); };
    auto clamp_y = [&](double y) { return std::clamp(y, -1.0, image.height + 1.0); };
    const double x1 = clamp_x(b[0]), x2 = clamp_x(b[0] + b[2]), y1 = clamp_y(b[1]), y2 = clamp_y(b[1] + b[3]);
    return rle_from_polygon({x1, y1, x1, y2, x2, y2, x2, y1}, static_cast<uint32_t>(image.height),
                            static_cast<uint32_t>(image.width));
}

void compute_ious(Cell& cell, CocoIouType type, const CocoImage& image) {
    const std::size_t D = cell.dts.size(), G = cell.gts.size();
    cell.ious.assign(D * G, 0.0);
    for (std::size_t d = 0; d < D; ++d) {
        const CocoDetection& dt = *cell.dts[d];
        std::optional<Rle> box_mask;
        if (type == CocoIouType::segm && !dt.mask) box_mask = box_polygon_mask(*dt.bbox, image);
        const Rle* dt_mask = dt.mask ? &*dt.mask : box_mask ? &*box_mask : nullptr;
        for (std::size_t g = 0; g < G; ++g) {
            const CocoAnnotation& gt = *cell.gts[g];
            cell.ious[d * G + g] = type == CocoIouType::segm ? rle_iou(*dt_mask, *gt.mask, gt.iscrowd)
                                                             : box_iou(*dt.bbox, gt.bbox, gt.iscrowd);
        }
    }
}

}  // namespace

// evaluateImg: greedy matching at each threshold, detections in score order.
CellResult evaluate_cell(const Cell& cell, const std::array<double, 2>& range) {
    const std::size_t D = cell.dts.size(), G = cell.gts.size();
    auto outside = [&](double area) { return area < range[0] || area > range[1]; };
    std::vector<uint8_t> gt_ignored(G);
    for (std::size_t g = 0; g < G; ++g) gt_ignored[g] = cell.gts[g]->iscrowd || outside(cell.gts[g]->area);
    // GTs not ignored first (stable), so a detection prefers them.
    std::vector<std::size_t> order(G);
    std::iota(order.begin(), order.end(), 0);
    std::stable_partition(order.begin(), order.end(), [&](std::size_t g) { return !gt_ignored[g]; });

    CellResult result;
    result.scores.resize(D);
    for (std::size_t d = 0; d < D; ++d) result.scores[d] = cell.dts[d]->score;
    result.matched.assign(kThresholds * D, 0);
    result.ignored.assign(kThresholds * D, 0);
    for (std::size_t g = 0; g < G; ++g) result.counted_gts += gt_ignored[g] ? 0 : 1;

    for (int t = 0; t < kThresholds; ++t) {
        std::vector<uint8_t> gt_taken(G, 0);
        for (std::size_t d = 0; d < D; ++d) {
            double best_iou = std::min(kIouThresholds[t], 1 - 1e-10);
            std::ptrdiff_t best = -1;
            for (std::size_t g : order) {
                if (gt_taken[g] && !cell.gts[g]->iscrowd) continue;  // crowds match many
                // Matched to a counted GT: ignored ones (sorted last) cannot replace it.
                if (best >= 0 && !gt_ignored[best] && gt_ignored[g]) break;
                const double iou = cell.ious[d * G + g];
                if (iou < best_iou) continue;
                best_iou = iou;  // ">=": of equal IoUs the later GT wins
                best = static_cast<std::ptrdiff_t>(g);
            }
            if (best < 0) continue;
            gt_taken[best] = 1;
            result.ignored[t * D + d] = gt_ignored[best];
            // pycocotools records the GT's id and reads 0 as "no match": a GT of id 0 counts
            // as a miss for the detection (while still used up). Kept for exact parity.
            result.matched[t * D + d] = cell.gts[best]->id != 0;
        }
        for (std::size_t d = 0; d < D; ++d)
            if (!result.matched[t * D + d] && outside(cell.dts[d]->area)) result.ignored[t * D + d] = 1;
    }
    return result;
}

std::vector<Cell> build_cells(const CocoDataset& gt, const CocoResults& results, CocoIouType type,
                              const std::vector<const CocoImage*>& images,
                              const std::vector<const CocoCategory*>& categories) {
    std::unordered_map<int64_t, std::size_t> image_index, category_index;
    for (std::size_t i = 0; i < images.size(); ++i) image_index[images[i]->id] = i;
    for (std::size_t k = 0; k < categories.size(); ++k) category_index[categories[k]->id] = k;
    const std::size_t I = images.size();
    std::vector<Cell> cells(categories.size() * I);
    // The readers guarantee known ids and the fields each IoU type needs; data made in code
    // (a detector's output) is checked here.
    auto cell_of = [&](int64_t image_id, int64_t category_id, const fs::path& file) -> Cell& {
        const auto i = image_index.find(image_id);
        const auto k = category_index.find(category_id);
        if (i == image_index.end() || k == category_index.end())
            throw Error(fmt::format("{}: image {} / category {} is not in the ground truth", file.string(),
                                    image_id, category_id));
        return cells[k->second * I + i->second];
    };
    for (const CocoAnnotation& a : gt.annotations) {
        if (type == CocoIouType::segm && !a.mask)
            throw Error(fmt::format("{}: annotation id {} has no segmentation (needed for segm evaluation)",
                                    gt.source.string(), a.id));
        cell_of(a.image_id, a.category_id, gt.source).gts.push_back(&a);
    }
    for (const CocoDetection& d : results.detections) {
        if (!d.bbox && (type == CocoIouType::bbox || !d.mask))
            throw Error(fmt::format("{}: a detection of image {} has no {}", results.source.string(), d.image_id,
                                    type == CocoIouType::bbox ? "bbox" : "segmentation nor bbox"));
        cell_of(d.image_id, d.category_id, results.source).dts.push_back(&d);
    }
    for (std::size_t c = 0; c < cells.size(); ++c) {
        Cell& cell = cells[c];
        sort_by_score(cell.dts, [](const CocoDetection* d) { return d->score; });
        if (cell.dts.size() > static_cast<std::size_t>(kMaxDets.back())) cell.dts.resize(kMaxDets.back());
        compute_ious(cell, type, *images[c % I]);
    }
    return cells;
}

}  // namespace sightline::detail
