// Run-length encoded masks as pycocotools' maskApi.c defines them: encode, decode, area,
// merge, IoU and the bounding box.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "sightline/coco.hpp"

namespace sightline {

namespace {

// Walks two masks of one size run by run: calls segment(length, in_a, in_b) for each stretch
// where neither mask changes value. Zero-length runs are stepped over.
template <class Segment>
void walk_runs(const Rle& a, const Rle& b, Segment segment) {
    std::size_t ia = 0, ib = 0;
    uint32_t left_a = a.counts.empty() ? 0 : a.counts[0];
    uint32_t left_b = b.counts.empty() ? 0 : b.counts[0];
    bool in_a = false, in_b = false;
    for (;;) {
        while (left_a == 0 && ia + 1 < a.counts.size()) left_a = a.counts[++ia], in_a = !in_a;
        while (left_b == 0 && ib + 1 < b.counts.size()) left_b = b.counts[++ib], in_b = !in_b;
        if (left_a == 0 || left_b == 0) return;  // both end together: counts sum to h * w
        const uint32_t n = std::min(left_a, left_b);
        segment(n, in_a, in_b);
        left_a -= n;
        left_b -= n;
    }
}

void check_same_size(const Rle& a, const Rle& b) {
    if (a.h != b.h || a.w != b.w)
        throw Error(fmt::format("masks of different sizes: {}x{} and {}x{} (width x height)", a.w,
                                a.h, b.w, b.h));
}

// Appends a run of `value` to canonical counts (0s first, equal neighbours joined).
void push_run(std::vector<uint32_t>& counts, bool& last_value, uint32_t n, bool value) {
    if (counts.empty()) {
        if (value) counts.push_back(0);
        counts.push_back(n);
    } else if (value == last_value) {
        counts.back() += n;
    } else {
        counts.push_back(n);
    }
    last_value = value;
}

}  // namespace

Rle rle_encode_column_major(const uint8_t* data, uint32_t h, uint32_t w) {
    Rle rle{h, w, {}};
    const std::size_t n = static_cast<std::size_t>(h) * w;
    uint8_t previous = 0;
    uint32_t run = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const uint8_t v = data[i] != 0;
        if (v != previous) {
            rle.counts.push_back(run);
            run = 0;
            previous = v;
        }
        ++run;
    }
    rle.counts.push_back(run);
    return rle;
}

Rle rle_encode(const cv::Mat& mask) {
    if (mask.type() != CV_8UC1) throw Error("rle_encode: the mask must be CV_8UC1");
    const auto h = static_cast<uint32_t>(mask.rows), w = static_cast<uint32_t>(mask.cols);
    std::vector<uint8_t> column_major(static_cast<std::size_t>(h) * w);
    for (uint32_t y = 0; y < h; ++y) {
        const uint8_t* row = mask.ptr<uint8_t>(static_cast<int>(y));
        for (uint32_t x = 0; x < w; ++x) column_major[static_cast<std::size_t>(x) * h + y] = row[x];
    }
    return rle_encode_column_major(column_major.data(), h, w);
}

cv::Mat rle_decode(const Rle& rle) {
    cv::Mat mask(static_cast<int>(rle.h), static_cast<int>(rle.w), CV_8UC1, cv::Scalar(0));
    std::size_t position = 0;  // column-major index
    bool value = false;
    for (uint32_t count : rle.counts) {
        if (value)
            for (uint32_t k = 0; k < count; ++k, ++position)
                mask.at<uint8_t>(static_cast<int>(position % rle.h), static_cast<int>(position / rle.h)) = 1;
        else
            position += count;
        value = !value;
    }
    return mask;
}

uint64_t rle_area(const Rle& rle) {
    uint64_t area = 0;
    for (std::size_t i = 1; i < rle.counts.size(); i += 2) area += rle.counts[i];
    return area;
}

Rle rle_merge(const std::vector<Rle>& rles, bool intersect) {
    if (rles.empty()) return Rle{};
    Rle merged = rles[0];
    for (std::size_t i = 1; i < rles.size(); ++i) {
        check_same_size(merged, rles[i]);
        Rle next{merged.h, merged.w, {}};
        bool last = false;
        walk_runs(merged, rles[i], [&](uint32_t n, bool a, bool b) {
            push_run(next.counts, last, n, intersect ? (a && b) : (a || b));
        });
        if (next.counts.empty()) next.counts.push_back(0);  // a 0-pixel mask
        merged = std::move(next);
    }
    return merged;
}

CocoBox rle_to_bbox(const Rle& rle) {
    // Unsigned 32-bit arithmetic as maskApi.c, so odd inputs give the same box.
    const uint32_t h = rle.h, w = rle.w;
    const std::size_t m = rle.counts.size() / 2 * 2;  // a trailing run of 0s adds nothing
    if (m == 0) return {0, 0, 0, 0};
    uint32_t xs = w, ys = h, xe = 0, ye = 0, cc = 0, x_first = 0;
    for (std::size_t j = 0; j < m; ++j) {
        cc += rle.counts[j];
        // Even j: first pixel of a run of 1s; odd j: its last pixel.
        const uint32_t t = cc - static_cast<uint32_t>(j % 2);
        const uint32_t y = t % h, x = (t - y) / h;
        if (j % 2 == 0)
            x_first = x;
        else if (x_first < x)
            ys = 0, ye = h - 1;  // the run crosses a column boundary: every row is covered
        xs = std::min(xs, x);
        xe = std::max(xe, x);
        ys = std::min(ys, y);
        ye = std::max(ye, y);
    }
    return {static_cast<double>(xs), static_cast<double>(ys), static_cast<double>(xe - xs + 1),
            static_cast<double>(ye - ys + 1)};
}

double box_iou(const CocoBox& dt, const CocoBox& gt, bool gt_is_crowd) {
    const double w = std::fmin(dt[2] + dt[0], gt[2] + gt[0]) - std::fmax(dt[0], gt[0]);
    if (w <= 0) return 0;
    const double h = std::fmin(dt[3] + dt[1], gt[3] + gt[1]) - std::fmax(dt[1], gt[1]);
    if (h <= 0) return 0;
    const double dt_area = dt[2] * dt[3], gt_area = gt[2] * gt[3];
    const double inter = w * h;
    const double uni = gt_is_crowd ? dt_area : dt_area + gt_area - inter;
    return inter / uni;
}

double rle_iou(const Rle& dt, const Rle& gt, bool gt_is_crowd) {
    check_same_size(dt, gt);
    // rleIou's shortcut: masks whose boxes do not overlap do not meet.
    if (box_iou(rle_to_bbox(dt), rle_to_bbox(gt), gt_is_crowd) <= 0) return 0;
    uint64_t inter = 0, uni = 0;
    walk_runs(dt, gt, [&](uint32_t n, bool a, bool b) {
        if (a || b) uni += n;
        if (a && b) inter += n;
    });
    if (inter == 0) return 0;
    if (gt_is_crowd) uni = rle_area(dt);
    return static_cast<double>(inter) / static_cast<double>(uni);
}

}  // namespace sightline
