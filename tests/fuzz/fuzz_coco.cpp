// The COCO readers on arbitrary bytes: the input is cut at its first 0x00 byte into a ground-
// truth file (read_coco_dataset: images, categories, polygons, RLE in both encodings) and a
// results file (read_coco_results against it); when both read, both evaluations run.
#include "fuzz_support.hpp"
#include "sightline/coco.hpp"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    static const fs::path gt_path = sightline::fuzz::scratch("gt.json");
    static const fs::path results_path = sightline::fuzz::scratch("results.json");
    std::size_t cut = 0;
    while (cut < size && data[cut] != 0) ++cut;
    sightline::fuzz::write(gt_path, data, cut);
    const std::size_t rest = cut < size ? cut + 1 : size;
    sightline::fuzz::write(results_path, data + rest, size - rest);
    try {
        const sightline::CocoDataset gt = sightline::read_coco_dataset(gt_path);
        const sightline::CocoResults results = sightline::read_coco_results(results_path, gt);
        for (auto type : {sightline::CocoIouType::segm, sightline::CocoIouType::bbox})
            (void)sightline::evaluate_coco(gt, results, type);
    } catch (const sightline::Error&) {
    }
    return 0;
}
