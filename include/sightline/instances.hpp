// Instance segmentation data: per image its objects (class, binary mask, box), read from the
// PASCAL VOC layout (SegmentationObject/ + SegmentationClass/) or from a COCO instance JSON,
// and written as a COCO instance JSON. OpenCV only; sightline/maskrcnn.hpp turns a sample into
// the model's tensors (instance_target).
//
// Conventions, once:
//   - Class ids are 1..K as in data.hpp (class_names()[0] = "background"); the COCO category of
//     class id c is category_ids()[c] (VOC data and the files Sightline writes: c itself).
//   - A box is x0, y0, x1, y1 in pixel EDGES, torchvision's (x1, y1, x2, y2): an object covering
//     columns a..b and rows c..d has the box (a, c, b + 1, d + 1), so x0 < x1 and y0 < y1 for
//     every non-empty mask. It equals COCO's [x, y, w, h] as torchvision's detection recipe
//     converts it ([x, y, x + w, y + h]).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "sightline/core.hpp"

namespace sightline {

struct InstanceObject {
    int label = 0;                 // class id, 1..K
    cv::Mat mask;                  // CV_8UC1 0/1, the image's size, at least one pixel set
    std::array<float, 4> box{};    // x0, y0, x1, y1 (pixel edges, see above)
    bool crowd = false;            // COCO iscrowd = 1 (torchvision's recipe leaves these out of training)
};

struct InstanceSample {
    std::string id;                // file stem
    int64_t image_id = 0;          // COCO image id (VOC: 1-based position in the split list)
    fs::path image_path;
    cv::Mat image;                 // CV_8UC3 RGB
    std::vector<InstanceObject> objects;
    std::size_t skipped_empty = 0;       // instances without a pixel (or, COCO, without box area)
    std::size_t skipped_unlabelled = 0;  // VOC: instances whose pixels are mostly background or
                                         // ignore (255) in SegmentationClass
};

class InstanceDataset {
public:
    virtual ~InstanceDataset() = default;
    virtual std::size_t size() const = 0;
    // Reads sample i from disk (thread-safe). Throws Error naming the file for a corrupt image
    // or mask, a mask or image of another size than expected, a class id outside the list.
    virtual InstanceSample get(std::size_t index) const = 0;
    // All class names, index = class id, [0] = "background".
    virtual const std::vector<std::string>& class_names() const = 0;
    // The COCO category id of each class id ([0] = 0, unused).
    virtual const std::vector<int64_t>& category_ids() const = 0;
};

// VOC layout: the images of ImageSets/Segmentation/<split>.txt (open_dataset's rules: classes.txt
// or the 21 VOC names, SegmentationClass/ must exist), each with SegmentationObject/<id>.png of
// instance ids (0 = background, 255 = ignore, 1..254 = one object each, in id order). An
// object's class is the most frequent class id of its pixels in SegmentationClass, pixels
// labelled 255 there not counted (a tie goes to the smaller id); an object whose majority is
// background, or that has no counted pixel, is skipped (skipped_unlabelled).
// Throws Error naming the missing folder, split file or image.
std::unique_ptr<InstanceDataset> open_voc_instances(const fs::path& root, const std::string& split);

// A COCO instance JSON (read_coco_dataset's rules) with its images in `images_dir`
// (images[].file_name relative to it). Classes are the categories in ascending id order
// (class id i = i-th category). Objects are the image's annotations in file order: mask from
// "segmentation" (polygons, compressed or uncompressed RLE), box from "bbox" ([x, y, x + w,
// y + h], clipped to the image), crowd from "iscrowd"; empty masks or boxes are skipped.
// Empty `images_dir`: <json folder>/../<S> for a file named instances_<S>.json (COCO's own
// layout, e.g. val2017/), else <json folder>/../JPEGImages (the layout `data synth` writes).
// Throws Error naming the file for a missing image, and, when a sample is read, for an image
// whose size differs from the JSON's or an annotation without segmentation.
std::unique_ptr<InstanceDataset> open_coco_instances(const fs::path& json, const fs::path& images_dir = {});

// A .json file: open_coco_instances(path); a folder: open_voc_instances(path, split).
std::unique_ptr<InstanceDataset> open_instance_dataset(const fs::path& path, const std::string& split);

// Writes the dataset as a COCO instance JSON, atomically: images (id, file_name, height,
// width), categories (object classes), annotations (ids from 1 in sample order; compressed
// RLE segmentation, bbox and area of the mask, iscrowd). Returns the number of annotations.
std::size_t write_coco_instances(const InstanceDataset& dataset, const fs::path& path);

// The box of a non-empty CV_8UC1 mask (pixel edges); all zeros for an empty one.
std::array<float, 4> box_of_mask(const cv::Mat& mask);

// Mirrors the image, masks and boxes left to right (x0' = W - x1, x1' = W - x0).
void horizontal_flip(InstanceSample& sample);

}  // namespace sightline
