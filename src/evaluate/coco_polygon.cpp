// Polygon -> RLE exactly as pycocotools' rleFrPoly: the outline is traced on a 5x finer grid,
// and every place where it crosses a pixel-column centre toggles the mask at the first pixel
// centre below the crossing. The rounding below (truncating casts of x + 0.5, the ceil) is
// what makes the masks equal pycocotools' bit for bit; cv::fillPoly differs at the edges.
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "sightline/coco.hpp"

namespace sightline {

namespace {

constexpr double kScale = 5;

struct Point {
    int x, y;
};

// Every grid point along the closed outline, edge by edge (each edge's end repeated as the
// next edge's start). Steps along the longer axis and rounds the other coordinate; an edge
// is always walked from its lower end, so both directions give the same points.
std::vector<Point> trace_outline(const std::vector<Point>& vertices) {
    std::vector<Point> points;
    const std::size_t k = vertices.size();
    for (std::size_t j = 0; j < k; ++j) {
        int xs = vertices[j].x, ys = vertices[j].y;
        int xe = vertices[(j + 1) % k].x, ye = vertices[(j + 1) % k].y;
        const int dx = std::abs(xe - xs), dy = std::abs(ys - ye);
        const bool flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
        if (flip) std::swap(xs, xe), std::swap(ys, ye);
        if (dx >= dy) {
            // A repeated vertex (dx = dy = 0) gives 0/0 in maskApi.c; its one point has the
            // x of its neighbours, so no column crossing comes from it and 0 serves as well.
            const double s = dx == 0 ? 0 : static_cast<double>(ye - ys) / dx;
            for (int d = 0; d <= dx; ++d) {
                const int t = flip ? dx - d : d;
                points.push_back({t + xs, static_cast<int>(ys + s * t + .5)});
            }
        } else {
            const double s = static_cast<double>(xe - xs) / dy;
            for (int d = 0; d <= dy; ++d) {
                const int t = flip ? dy - d : d;
                points.push_back({static_cast<int>(xs + s * t + .5), t + ys});
            }
        }
    }
    return points;
}

}  // namespace

Rle rle_from_polygon(const std::vector<double>& xy, uint32_t h, uint32_t w) {
    const std::size_t k = xy.size() / 2;
    if (k < 3) throw Error(fmt::format("a polygon needs at least 3 points, got {}", k));
    std::vector<Point> vertices(k);
    for (std::size_t j = 0; j < k; ++j)
        vertices[j] = {static_cast<int>(kScale * xy[2 * j] + .5), static_cast<int>(kScale * xy[2 * j + 1] + .5)};
    const std::vector<Point> outline = trace_outline(vertices);

    // Where the outline crosses the centre of pixel column x, the first pixel centre below
    // the crossing, as a column-major index x * h + y.
    std::vector<uint64_t> toggles;
    for (std::size_t j = 1; j < outline.size(); ++j) {
        const Point& a = outline[j - 1];
        const Point& b = outline[j];
        if (a.x == b.x) continue;
        double xd = b.x < a.x ? b.x : b.x - 1;
        xd = (xd + .5) / kScale - .5;
        if (std::floor(xd) != xd || xd < 0 || xd > static_cast<double>(w) - 1) continue;
        double yd = std::min(a.y, b.y);
        yd = (yd + .5) / kScale - .5;
        yd = std::ceil(std::clamp(yd, 0.0, static_cast<double>(h)));
        toggles.push_back(static_cast<uint64_t>(xd) * h + static_cast<uint64_t>(yd));
    }
    toggles.push_back(static_cast<uint64_t>(h) * w);
    std::sort(toggles.begin(), toggles.end());

    // Gaps between sorted toggles are the runs; two toggles at one place cancel, so a zero
    // gap joins its neighbours.
    std::vector<uint64_t> gaps(toggles.size());
    uint64_t previous = 0;
    for (std::size_t j = 0; j < toggles.size(); ++j) gaps[j] = toggles[j] - previous, previous = toggles[j];
    Rle rle{h, w, {}};
    std::size_t j = 0;
    rle.counts.push_back(static_cast<uint32_t>(gaps[j++]));
    while (j < gaps.size()) {
        if (gaps[j] > 0) {
            rle.counts.push_back(static_cast<uint32_t>(gaps[j++]));
        } else if (++j < gaps.size()) {
            rle.counts.back() += static_cast<uint32_t>(gaps[j++]);
        }
    }
    return rle;
}

}  // namespace sightline
