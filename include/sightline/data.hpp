// Datasets: the synthetic shortcut scenes, Fashion-MNIST composites, PASCAL VOC layout and
// image folder + labels.csv. Samples are OpenCV images; tensors are made in src/train.
// Nothing here depends on LibTorch.
//
// Class convention (as PASCAL VOC): classes.txt lists the mask classes one per line, line i
// being class id i, with "background" as id 0. Masks hold class ids, 255 = ignore. An image's
// labels are the ids (>= 1) of the object classes present. A classifier has one output per
// object class: output index = class id - 1.
//
// Layout written by the generators and read by open_dataset (PASCAL VOC plus three files):
//   JPEGImages/<id>.png           RGB images (PNG to stay lossless; the reader takes .jpg too)
//   SegmentationClass/<id>.png    palette PNG of class ids (exact masks, no 255 band)
//   SegmentationObject/<id>.png   palette PNG of instance ids 1..k, 0 = background (--instances)
//   SegmentationContext/<id>.png  synth only: which class's context is visible at each pixel
//                                 (class id whose own context it is; 0 = neutral filler or
//                                 covered by an object)
//   ImageSets/Segmentation/<split>.txt   one id per line
//   labels.csv                    "image,labels": id, class names joined by ';' (may be empty)
//   classes.txt                   class names, background first
//   dataset.json                  generator name and parameters, split sizes
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "sightline/core.hpp"

namespace sightline {

struct Sample {
    std::string id;            // file stem, e.g. "train_000012"
    cv::Mat image;             // CV_8UC3, RGB
    cv::Mat mask;              // CV_8UC1 class ids, 255 = ignore; empty when the set has none
    std::vector<int> labels;   // object class ids present (>= 1), sorted, no duplicates
    fs::path image_path;       // the file it was read from (empty for generated samples)
};

class Dataset {
public:
    virtual ~Dataset() = default;
    virtual std::size_t size() const = 0;
    // Reads sample i from disk (thread-safe: loaders call it from worker threads). Throws
    // Error naming the file for a corrupt image or mask, a mask whose size differs from its
    // image, or a mask id outside the class list (other than 255).
    virtual Sample get(std::size_t index) const = 0;
    // All class names, index = class id, [0] = "background".
    virtual const std::vector<std::string>& class_names() const = 0;
    std::size_t num_object_classes() const { return class_names().size() - 1; }
};

// Opens a dataset root written by `sightline data ...` or laid out as PASCAL VOC
// (JPEGImages/, SegmentationClass/, ImageSets/Segmentation/<split>.txt, classes.txt or the
// 21 VOC names), or an image folder with labels.csv. Throws Error naming the missing file.
//
// VOC layout (chosen when ImageSets/Segmentation/ exists): the split file lists ids; each
// image is JPEGImages/<id>.jpg, .jpeg or .png; masks come from SegmentationClass/<id>.png
// when that folder exists. Labels come from labels.csv when it lists the id, otherwise from
// the mask (ids other than 0 and 255).
// Image folder (otherwise): <root>/<split>/labels.csv, or <root>/labels.csv for split "" or
// "all"; the `image` column names a file relative to the csv's folder (an id without
// extension is looked up as .png/.jpg there and in JPEGImages/). Samples have no mask.
// classes.txt beside the csv (or in root) fixes the class list; without it the classes are
// the sorted names found in the csv (give a classes.txt so that train and val agree).
// Errors at open: missing split file, empty split, an image listed but missing, an unknown
// class name in labels.csv, an empty or malformed classes.txt.
std::unique_ptr<Dataset> open_dataset(const fs::path& root, const std::string& split);

// The 21 PASCAL VOC class names, background first.
const std::vector<std::string>& voc_class_names();

// ---- seeded random numbers ----------------------------------------------------------------

// xoshiro256** seeded through SplitMix64: the same numbers on every platform and standard
// library (std::*_distribution are implementation-defined, so they are not used).
class Rng {
public:
    explicit Rng(uint64_t seed = 0);
    uint64_t next();
    double uniform();                        // [0, 1)
    double uniform(double lo, double hi);    // [lo, hi)
    int uniform_int(int lo, int hi);         // [lo, hi], inclusive
    bool bernoulli(double p);
    double normal();                         // mean 0, sd 1 (Box-Muller)
    double gamma(double shape);              // scale 1 (Marsaglia & Tsang 2000)
    double beta(double a, double b);
    // An independent generator for a sub-stream, e.g. one per image; does not advance *this.
    Rng fork(uint64_t stream) const;
    // Fisher-Yates shuffle.
    template <typename T>
    void shuffle(std::vector<T>& v) {
        for (std::size_t i = v.size(); i > 1; --i)
            std::swap(v[i - 1], v[static_cast<std::size_t>(next() % i)]);
    }

private:
    std::array<uint64_t, 4> s_;
};

// A well-mixed 64-bit hash of two values (SplitMix64 finaliser), for deriving seeds.
uint64_t mix_seed(uint64_t a, uint64_t b);

// ---- transforms (cv::Mat; the mask follows the image's geometry) ---------------------------
// Geometry transforms move image and mask together: image bilinear (area when shrinking),
// mask nearest neighbour so ids stay ids. Padding fills the image with 0 and the mask with
// 255 (ignore). Colour transforms touch the image only. Normalisation and mixing of tensors
// belong to src/train; plan_mixup gives the random part.

void resize(Sample& sample, int height, int width);
void horizontal_flip(Sample& sample);
void crop(Sample& sample, const cv::Rect& box);  // box inside the image
// Pads at the bottom and right to at least height x width (image 0, mask 255).
void pad_to(Sample& sample, int height, int width);

// Random resized crop (Szegedy et al. 2015, the Inception / torchvision recipe): area a
// fraction in [scale_min, scale_max] of the image, aspect ratio log-uniform in
// [ratio_min, ratio_max]; 10 tries, then the largest centred crop within the ratio range.
struct ResizedCropOptions {
    double scale_min = 0.35;
    double scale_max = 1.0;
    double ratio_min = 3.0 / 4.0;
    double ratio_max = 4.0 / 3.0;
};
cv::Rect sample_resized_crop(int height, int width, const ResizedCropOptions& options, Rng& rng);
void random_resized_crop(Sample& sample, int height, int width, const ResizedCropOptions& options,
                         Rng& rng);

// Colour jitter as torchvision's ColorJitter: factors drawn uniformly from [1-b, 1+b]
// (brightness), [1-c, 1+c] (contrast, around the mean grey), [1-s, 1+s] (saturation, against
// the grey image) and a hue shift in [-h, h] of a full turn (h <= 0.5), applied in random
// order. 0 disables a component.
struct ColorJitterOptions {
    double brightness = 0.3;
    double contrast = 0.3;
    double saturation = 0.3;
    double hue = 0.0;
};
void color_jitter(cv::Mat& rgb, const ColorJitterOptions& options, Rng& rng);

// The training augmentation in one call: random resized crop to size x size (or a plain
// resize when crop is off), flip with probability 0.5, colour jitter.
struct AugmentOptions {
    int size = 96;                 // output height and width
    bool crop = true;              // random resized crop (else resize)
    ResizedCropOptions crop_options{};
    bool flip = true;              // horizontal flip with probability 0.5
    bool jitter = true;
    ColorJitterOptions jitter_options{};
};
void augment(Sample& sample, const AugmentOptions& options, Rng& rng);

// Mixup (Zhang et al. 2018): x' = lambda * x_i + (1 - lambda) * x_partner[i], same for the
// label vectors; one lambda ~ Beta(alpha, alpha) per batch, partner = a random permutation.
struct MixupPlan {
    double lambda = 1.0;
    std::vector<std::size_t> partner;  // size = batch
};
MixupPlan plan_mixup(std::size_t batch, double alpha, Rng& rng);

// ---- generators -----------------------------------------------------------------------------

// Called after each finished image from worker threads, one call at a time.
using ProgressFn = std::function<void(std::size_t done, std::size_t total)>;

struct GenerationSummary {
    std::map<std::string, std::size_t> split_sizes;  // split file name -> number of images
    std::size_t images = 0;                           // all images written
    double train_on_own_context = 0.0;  // synth: share of train objects on their own context
};

// Synthetic shortcut scenes (`sightline data synth`): object classes boat, train, plane, car,
// cow, fish, each with its own context (water, tracks, sky, road, grass, reef). In the train
// split each object sits on its class's context with probability `spurious`, otherwise on a
// uniformly drawn other context. val and test hold each scene three times with the same
// object in the same pose: <id>_matched (own context), <id>_swapped (a context of a class not
// in the image), <id>_context (objects removed; labels.csv still lists the original classes,
// the mask is all background). Split files: train, val, test (all versions), and
// val_matched, val_swapped, val_context, test_* per version. scenes.csv lists per image the
// split, scene, version, object classes and context names. `multi` puts 1-3 objects side by
// side, each in its own vertical band of the image with that band's own context.
struct SynthOptions {
    int n = 600;              // training images; val and test get n/5 scenes each (x3 images)
    int size = 96;            // image height and width, >= 32
    double spurious = 0.95;   // P(object on its own class's context) in train
    bool multi = false;       // 1-3 objects per image (multi-label)
    bool instances = false;   // also write SegmentationObject/
    uint64_t seed = 1;
    int threads = 0;          // 0 = hardware concurrency; the output does not depend on it
};
GenerationSummary generate_synth(const fs::path& out, const SynthOptions& options,
                                 const ProgressFn& progress = {});

// The synth classes: background first, then the six object classes; context_names()[i] is
// the context of class i ("none" for 0).
const std::vector<std::string>& synth_class_names();
const std::vector<std::string>& synth_context_names();

// Fashion-MNIST composites (`sightline data fashion`): 1-3 items of Debian's
// dataset-fashion-mnist (28x28 grey, scaled up, tinted) per image on random textured
// backgrounds. Masks: the item's silhouette (28x28 pixels brighter than 8 of 255, scaled up
// bilinearly and cut at one half; later items drawn over earlier ones); labels = classes with
// visible pixels. Train items come from
// the train IDX files, val and test items from the two halves of the t10k files.
struct FashionOptions {
    int n = 2000;             // training images; val and test get n/5 each
    int size = 96;            // >= 48
    bool instances = false;   // also write SegmentationObject/
    uint64_t seed = 1;
    fs::path source = "/usr/share/datasets/fashion-mnist";  // folder with the *-ubyte.gz files
    int threads = 0;
};
GenerationSummary generate_fashion(const fs::path& out, const FashionOptions& options,
                                   const ProgressFn& progress = {});
const std::vector<std::string>& fashion_class_names();

// An IDX file (LeCun's MNIST format), gzip-compressed or not: shape and unsigned bytes.
struct IdxArray {
    std::vector<int> shape;
    std::vector<uint8_t> data;
};
// Throws Error naming the file when it is missing, truncated or not an unsigned-byte IDX.
IdxArray read_idx(const fs::path& path);

}  // namespace sightline
