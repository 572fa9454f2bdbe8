// open_dataset on arbitrary text files: the input is cut at 0x00 bytes into classes.txt,
// labels.csv and a VOC split list; the images they name are absent or one small PNG.
#include <opencv2/imgcodecs.hpp>

#include "fuzz_support.hpp"
#include "sightline/data.hpp"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    static const fs::path root = [] {
        fs::path r = sightline::fuzz::scratch("dataset");
        fs::create_directories(r / "JPEGImages");
        cv::imwrite((r / "JPEGImages" / "a.png").string(), cv::Mat(4, 4, CV_8UC3, cv::Scalar(1, 2, 3)));
        return r;
    }();
    std::string parts[3];
    int part = 0;
    for (std::size_t i = 0; i < size; ++i) {
        if (data[i] == 0 && part < 2) ++part;
        else parts[part].push_back(static_cast<char>(data[i]));
    }
    const bool voc = !parts[2].empty();
    fs::remove_all(root / "ImageSets");
    sightline::fuzz::write(root / "classes.txt", reinterpret_cast<const uint8_t*>(parts[0].data()), parts[0].size());
    sightline::fuzz::write(root / "labels.csv", reinterpret_cast<const uint8_t*>(parts[1].data()), parts[1].size());
    if (voc) {
        fs::create_directories(root / "ImageSets" / "Segmentation");
        sightline::fuzz::write(root / "ImageSets" / "Segmentation" / "train.txt",
                               reinterpret_cast<const uint8_t*>(parts[2].data()), parts[2].size());
    }
    try {
        auto dataset = sightline::open_dataset(root, voc ? "train" : "");
        if (dataset->size() > 0) (void)dataset->get(0);
    } catch (const sightline::Error&) {
    }
    return 0;
}
