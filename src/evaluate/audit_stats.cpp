// The audit's statistics of one explanation map against an object mask and a context mask
// (definitions in sightline/audit.hpp).
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "sightline/audit.hpp"
#include "evaluate/audit_values.hpp"

namespace sightline {

namespace {

using audit_detail::kIgnore;
using audit_detail::kNaN;

void check_inputs(const cv::Mat& map, const cv::Mat& mask, const cv::Mat& context, int class_id,
                  const AuditThresholds& th, const std::string& name) {
    if (map.channels() != 1 || (map.depth() != CV_32F && map.depth() != CV_64F))
        throw Error(fmt::format("{}: the map must be one float channel, got {} channel(s) of depth {}", name,
                                map.channels(), map.depth()));
    if (mask.type() != CV_8UC1)
        throw Error(fmt::format("{}: the object mask must be 8-bit class ids (CV_8UC1), got type {}", name,
                                mask.type()));
    if (map.size() != mask.size())
        throw Error(fmt::format("{}: map is {}x{} but the object mask is {}x{} (width x height)", name,
                                map.cols, map.rows, mask.cols, mask.rows));
    if (!context.empty() && (context.type() != CV_8UC1 || context.size() != mask.size()))
        throw Error(fmt::format("{}: context mask is {}x{} (type {}) but the object mask is {}x{} (8-bit)", name,
                                context.cols, context.rows, context.type(), mask.cols, mask.rows));
    if (class_id < 1 || class_id >= kIgnore)
        throw Error(fmt::format("{}: class id {} is not an object class (1..254)", name, class_id));
    for (double t : th.fixed)
        if (!(t > 0.0 && t < 1.0)) throw UsageError(fmt::format("--thresholds: {} is not in (0, 1)", t));
    if (th.grid_steps < 2) throw UsageError(fmt::format("grid steps {}: need at least 2", th.grid_steps));
    if (th.pointing_tolerance < 0)
        throw UsageError(fmt::format("--pointing-tolerance {}: must be >= 0", th.pointing_tolerance));
}

double iou(int64_t inter, int64_t pred, int64_t object) {
    if (object == 0) return kNaN;
    return double(inter) / double(pred + object - inter);
}

// Index of the highest grid threshold i / steps that v (in [0,1]) reaches: v >= i / steps
// exactly as the comparison the slow path makes (the product v * steps may round across).
int grid_bin(double v, int steps) {
    int b = static_cast<int>(std::floor(v * steps));
    if (b > steps) b = steps;
    if (b < 0) b = 0;
    while (b < steps && v >= double(b + 1) / steps) ++b;
    while (b > 0 && v < double(b) / steps) --b;
    return b;
}

}  // namespace

std::vector<double> audit_grid(const AuditThresholds& th) {
    std::vector<double> grid;
    for (int i = 1; i < th.grid_steps; ++i) grid.push_back(double(i) / th.grid_steps);
    return grid;
}

AuditRecord audit_map(const cv::Mat& map_in, const cv::Mat& mask, const cv::Mat& context, int class_id,
                      const AuditThresholds& th, const std::string& name) {
    check_inputs(map_in, mask, context, class_id, th, name);
    cv::Mat map;
    map_in.convertTo(map, CV_64F);
    const bool has_context = !context.empty();
    const uint8_t cls = static_cast<uint8_t>(class_id);

    // Pass 1: areas, masses and the maximum.
    int64_t labelled = 0, n_object = 0, n_context = 0;
    double total = 0, m_object = 0, m_context = 0, peak = 0;
    cv::Point peak_at(-1, -1);
    for (int y = 0; y < mask.rows; ++y) {
        const uint8_t* mk = mask.ptr<uint8_t>(y);
        const uint8_t* cx = has_context ? context.ptr<uint8_t>(y) : nullptr;
        const double* mp = map.ptr<double>(y);
        for (int x = 0; x < mask.cols; ++x) {
            if (mk[x] == kIgnore) continue;
            ++labelled;
            const double v = mp[x] > 0 ? mp[x] : 0.0;
            total += v;
            if (v > peak) {
                peak = v;
                peak_at = {x, y};
            }
            if (mk[x] == cls) {
                ++n_object;
                m_object += v;
            } else if (cx && cx[x] != 0) {
                ++n_context;
                m_context += v;
            }
        }
    }
    if (labelled == 0) throw Error(fmt::format("{}: every pixel of the mask is ignore (255)", name));

    AuditRecord r;
    r.class_id = class_id;
    r.has_context = has_context;
    r.total_mass = total;
    const double n = double(labelled);
    r.object_area = n_object / n;
    r.context_area = has_context ? n_context / n : kNaN;
    r.elsewhere_area = double(labelled - n_object - n_context) / n;
    if (total > 0) {
        r.object_mass = m_object / total;
        r.context_mass = has_context ? m_context / total : kNaN;
        // Subtracting from 1 would leave rounding residue where elsewhere holds nothing.
        r.elsewhere_mass = (total - m_object - m_context) <= 0 ? 0.0 : (total - m_object - m_context) / total;
    } else {
        r.object_mass = r.context_mass = r.elsewhere_mass = kNaN;
    }

    // Thresholded map against the object. pred(t) = {v >= t * peak}; with no positive value
    // nothing is predicted (t > 0).
    const std::vector<double> grid = audit_grid(th);
    const int steps = th.grid_steps;
    std::vector<int64_t> bin_all(steps + 1, 0), bin_object(steps + 1, 0);
    std::vector<int64_t> fixed_pred(th.fixed.size(), 0), fixed_inter(th.fixed.size(), 0);
    if (peak > 0) {
        for (int y = 0; y < mask.rows; ++y) {
            const uint8_t* mk = mask.ptr<uint8_t>(y);
            const double* mp = map.ptr<double>(y);
            for (int x = 0; x < mask.cols; ++x) {
                if (mk[x] == kIgnore || !(mp[x] > 0)) continue;
                const double v = mp[x] / peak;
                const bool obj = mk[x] == cls;
                const int b = grid_bin(v, steps);
                ++bin_all[b];
                if (obj) ++bin_object[b];
                for (std::size_t k = 0; k < th.fixed.size(); ++k)
                    if (v >= th.fixed[k]) {
                        ++fixed_pred[k];
                        if (obj) ++fixed_inter[k];
                    }
            }
        }
    }
    for (std::size_t k = 0; k < th.fixed.size(); ++k) r.iou_fixed.push_back(iou(fixed_inter[k], fixed_pred[k], n_object));
    // Pixels reaching threshold i are those in bins >= i: a running sum from the top.
    int64_t pred = 0, inter = 0;
    r.iou_grid.assign(grid.size(), kNaN);
    for (int b = steps; b >= 1; --b) {
        pred += bin_all[b];
        inter += bin_object[b];
        if (b <= steps - 1) r.iou_grid[b - 1] = iou(inter, pred, n_object);
    }

    if (n_object > 0 && peak > 0) {
        const int tol = th.pointing_tolerance;
        r.pointing = 0;
        for (int dy = -tol; dy <= tol && r.pointing == 0; ++dy)
            for (int dx = -tol; dx <= tol; ++dx) {
                if (dx * dx + dy * dy > tol * tol) continue;
                const int x = peak_at.x + dx, y = peak_at.y + dy;
                if (x < 0 || y < 0 || x >= mask.cols || y >= mask.rows) continue;
                if (mask.at<uint8_t>(y, x) == cls) {
                    r.pointing = 1;
                    break;
                }
            }
    }
    return r;
}

}  // namespace sightline
