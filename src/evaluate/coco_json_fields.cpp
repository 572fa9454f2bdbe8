// Field readers for the COCO JSON files, with one clear error line per problem.
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "evaluate/coco_json_fields.hpp"

namespace sightline::detail {

namespace {


const char* type_name(const json& v) {
    switch (v.type()) {
        case json::value_t::null: return "null";
        case json::value_t::object: return "an object";
        case json::value_t::array: return "a list";
        case json::value_t::string: return "a string";
        case json::value_t::boolean: return "a boolean";
        default: return "a number";
    }
}

std::optional<int64_t> as_integer(const json& v) {
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_number_float()) {
        const double d = v.get<double>();
        if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return static_cast<int64_t>(d);
    }
    return std::nullopt;
}

std::vector<double> read_polygon(const json& polygon, int height, int width, const std::string& where) {
    if (!polygon.is_array())
        throw Error(fmt::format("{}: a polygon must be a list of numbers, got {}", where, type_name(polygon)));
    std::vector<double> xy;
    xy.reserve(polygon.size());
    for (const json& v : polygon) {
        if (!v.is_number() || !std::isfinite(v.get<double>()))
            throw Error(fmt::format("{}: a polygon coordinate is not a finite number", where));
        // Rasterising costs time and memory in proportion to the outline's length: a point more
        // than an image size away from the image is a mistake, not a shape.
        const double size = xy.size() % 2 == 0 ? width : height;
        if (v.get<double>() < -size || v.get<double>() > 2 * size)
            throw Error(fmt::format("{}: polygon {} = {} is far outside the {}x{} image", where,
                                    xy.size() % 2 == 0 ? "x" : "y", v.get<double>(), width, height));
        xy.push_back(v.get<double>());
    }
    if (xy.size() % 2 != 0)
        throw Error(fmt::format("{}: a polygon has an odd number of coordinates ({})", where, xy.size()));
    if (xy.size() < 6)
        throw Error(fmt::format("{}: a polygon needs at least 3 points, got {}", where, xy.size() / 2));
    double x0 = xy[0], x1 = xy[0], y0 = xy[1], y1 = xy[1];
    for (std::size_t i = 0; i < xy.size(); i += 2) {
        x0 = std::min(x0, xy[i]), x1 = std::max(x1, xy[i]);
        y0 = std::min(y0, xy[i + 1]), y1 = std::max(y1, xy[i + 1]);
    }
    if (x1 < 0 || y1 < 0 || x0 > width || y0 > height)
        throw Error(fmt::format("{}: a polygon lies entirely outside the {}x{} image (x {}..{}, y {}..{})",
                                where, width, height, x0, x1, y0, y1));
    return xy;
}

void check_rle_size(const json& rle, int height, int width, const std::string& where) {
    const json& size = rle.at("size");
    const bool pair = size.is_array() && size.size() == 2 && as_integer(size[0]) && as_integer(size[1]);
    if (!pair) throw Error(fmt::format("{}: RLE \"size\" must be [height, width]", where));
    if (*as_integer(size[0]) != height || *as_integer(size[1]) != width)
        throw Error(fmt::format("{}: RLE size is {}x{} (height x width) but the image is {}x{}", where,
                                *as_integer(size[0]), *as_integer(size[1]), height, width));
}

Rle read_uncompressed_rle(const json& counts, int height, int width, const std::string& where) {
    Rle rle{static_cast<uint32_t>(height), static_cast<uint32_t>(width), {}};
    uint64_t total = 0;
    for (const json& c : counts) {
        const std::optional<int64_t> n = as_integer(c);
        if (!n || *n < 0 || *n > std::numeric_limits<uint32_t>::max())
            throw Error(fmt::format("{}: RLE counts must be non-negative integers", where));
        rle.counts.push_back(static_cast<uint32_t>(*n));
        total += static_cast<uint64_t>(*n);
    }
    if (total != static_cast<uint64_t>(height) * width)
        throw Error(fmt::format("{}: RLE counts cover {} pixels, the {}x{} image has {}", where, total,
                                width, height, static_cast<uint64_t>(height) * width));
    return rle;
}

}  // namespace

json read_json_file(const fs::path& path) {
    const std::string text = read_file(path);
    try {
        return json::parse(text);
    } catch (const json::exception& e) {
        // Syntax errors, and numbers beyond double's range (out_of_range 406, found by fuzz_coco).
        std::string message = e.what();
        const std::size_t tag = message.find("] ");
        if (tag != std::string::npos) message = message.substr(tag + 2);  // drop "[json.exception...]"
        if (message.size() > 160) message = message.substr(0, 157) + "...";  // a 400-digit number
        throw Error(fmt::format("{}: not valid JSON: {}", path.string(), message));
    }
}

int64_t read_id(const json& object, const char* key, const std::string& where) {
    if (!object.contains(key)) throw Error(fmt::format("{}: no \"{}\"", where, key));
    const std::optional<int64_t> id = as_integer(object[key]);
    if (!id)
        throw Error(fmt::format("{}: \"{}\" must be an integer, got {}", where, key, type_name(object[key])));
    return *id;
}

double read_number(const json& object, const char* key, const std::string& where) {
    if (!object.contains(key)) throw Error(fmt::format("{}: no \"{}\"", where, key));
    const json& v = object[key];
    if (!v.is_number()) throw Error(fmt::format("{}: \"{}\" must be a number, got {}", where, key, type_name(v)));
    const double d = v.get<double>();
    if (!std::isfinite(d)) throw Error(fmt::format("{}: \"{}\" is not finite", where, key));
    return d;
}

CocoBox read_box(const json& value, const std::string& where) {
    if (!value.is_array() || value.size() != 4)
        throw Error(fmt::format("{}: \"bbox\" must be [x, y, width, height]", where));
    CocoBox box{};
    for (std::size_t i = 0; i < 4; ++i) {
        if (!value[i].is_number() || !std::isfinite(value[i].get<double>()))
            throw Error(fmt::format("{}: \"bbox\" values must be finite numbers", where));
        box[i] = value[i].get<double>();
    }
    if (box[2] < 0 || box[3] < 0)
        throw Error(fmt::format("{}: \"bbox\" has a negative size ({} x {})", where, box[2], box[3]));
    return box;
}

Rle read_segmentation(const json& segmentation, int height, int width, const std::string& where) {
    if (segmentation.is_array()) {
        if (segmentation.empty()) throw Error(fmt::format("{}: \"segmentation\" is an empty list", where));
        std::vector<Rle> parts;
        for (const json& polygon : segmentation)
            parts.push_back(rle_from_polygon(read_polygon(polygon, height, width, where),
                                             static_cast<uint32_t>(height), static_cast<uint32_t>(width)));
        return rle_merge(parts);  // the parts of one object are one mask
    }
    if (!segmentation.is_object() || !segmentation.contains("counts") || !segmentation.contains("size"))
        throw Error(fmt::format("{}: \"segmentation\" must be polygons or an RLE {{\"counts\", \"size\"}}", where));
    check_rle_size(segmentation, height, width, where);
    const json& counts = segmentation["counts"];
    if (counts.is_array()) return read_uncompressed_rle(counts, height, width, where);
    if (!counts.is_string())
        throw Error(fmt::format("{}: RLE \"counts\" must be a list or a string, got {}", where, type_name(counts)));
    try {
        return rle_from_string(counts.get<std::string>(), static_cast<uint32_t>(height), static_cast<uint32_t>(width));
    } catch (const Error& e) {
        throw Error(fmt::format("{}: {}", where, e.what()));
    }
}

}  // namespace sightline::detail
