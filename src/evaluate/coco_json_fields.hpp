// Field readers shared by the COCO ground-truth and results readers. Each takes `where`, the
// start of the error line ("gt.json: annotations[3] (id 17)"), and throws Error
// "<where>: <problem>" for a missing or malformed field.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "sightline/coco.hpp"

namespace sightline::detail {

using nlohmann::json;

// The parsed file; Error "<file>: not valid JSON: <parser message>" otherwise.
json read_json_file(const fs::path& path);

// An integer (an integral float such as 3.0 is accepted, as Python's dict lookups do).
int64_t read_id(const json& object, const char* key, const std::string& where);
// A finite number.
double read_number(const json& object, const char* key, const std::string& where);
// [x, y, w, h], finite, w and h >= 0.
CocoBox read_box(const json& value, const std::string& where);

// "segmentation" as pycocotools' annToRLE reads it for an image of height x width: a list of
// polygons (merged), uncompressed RLE {"counts": [...], "size": [h, w]} or compressed RLE
// {"counts": "...", "size": [h, w]}. The RLE size must be the image size.
Rle read_segmentation(const json& segmentation, int height, int width, const std::string& where);

}  // namespace sightline::detail
