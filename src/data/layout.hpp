// Writing the bookkeeping files of the dataset layout (see include/sightline/data.hpp):
// split lists, labels.csv, classes.txt. Images and masks are written by the generators.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "sightline/data.hpp"

namespace sightline::detail {

// Folders of the layout.
inline const char* kImages = "JPEGImages";
inline const char* kClassMasks = "SegmentationClass";
inline const char* kInstanceMasks = "SegmentationObject";
inline const char* kContextMasks = "SegmentationContext";
inline const char* kSplits = "ImageSets/Segmentation";

// Creates the output folders (and checks they are writable).
void make_layout_dirs(const fs::path& root, bool instances, bool contexts);

// ImageSets/Segmentation/<name>.txt for each (name, ids) pair, in the given order.
void write_split_files(const fs::path& root,
                       const std::vector<std::pair<std::string, std::vector<std::string>>>& splits);

// labels.csv: "image,labels" rows with the class names of the ids joined by ';'.
void write_labels_csv(const fs::path& root, const std::vector<std::string>& class_names,
                      const std::vector<std::pair<std::string, std::vector<int>>>& rows);

// classes.txt (or another name): one name per line.
void write_names(const fs::path& path, const std::vector<std::string>& names);

// annotations/instances_<split>.json for each split (the COCO twin of SegmentationObject/),
// read back from the files already written so both describe the same objects.
void write_coco_instance_files(const fs::path& root, const std::vector<std::string>& splits);

// The sorted object ids (not 0, not 255) present in an index mask.
std::vector<int> labels_in_mask(const cv::Mat& mask);

}  // namespace sightline::detail
