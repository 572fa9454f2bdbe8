// `sightline instance`: Mask R-CNN over image files, with COCO results for `eval --coco`.
#include <chrono>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "sightline/device.hpp"
#include "sightline/instance.hpp"
#include "sightline/palette.hpp"

namespace sightline {

namespace {

struct InputImage {
    fs::path path;
    int64_t id = 0;
};

// The images to run and their COCO ids: --coco's images (file_name under --input), else the
// sorted inputs numbered from 1.
std::vector<InputImage> list_images(const InstanceOptions& o) {
    std::vector<InputImage> images;
    if (!o.coco.empty()) {
        if (!fs::is_directory(o.input))
            throw UsageError(fmt::format("--coco needs --input to be the folder of its images, got {}", o.input.string()));
        const CocoDataset gt = read_coco_dataset(o.coco);
        for (const CocoImage& image : gt.images) {
            const fs::path path = o.input / image.file_name;
            if (image.file_name.empty() || !fs::is_regular_file(path))
                throw Error(fmt::format("{}: no such image file (image id {} of {})", path.string(), image.id,
                                        o.coco.string()));
            images.push_back({path, image.id});
        }
        return images;
    }
    if (!fs::exists(o.input)) throw Error(fmt::format("{}: no such image or folder (--input)", o.input.string()));
    const std::vector<fs::path> files = list_inputs(o.input, /*accept_npy=*/false);
    if (files.empty()) throw Error(fmt::format("{}: no images found", o.input.string()));
    for (std::size_t i = 0; i < files.size(); ++i) images.push_back({files[i], static_cast<int64_t>(i) + 1});
    return images;
}

void validate(const InstanceOptions& o) {
    if (o.model.empty()) throw UsageError("--model is required");
    if (o.out.empty()) throw UsageError("--out is required");
    if (!(o.score_threshold >= 0 && o.score_threshold <= 1))
        throw UsageError(fmt::format("--score-threshold must be in [0, 1], got {}", o.score_threshold));
}

}  // namespace

InstanceSummary segment_instances(const InstanceOptions& o, const std::function<void(std::size_t, std::size_t)>& progress) {
    validate(o);
    // Everything that can fail on the inputs fails here, before the first file is written.
    if (!fs::is_regular_file(o.model)) throw Error(fmt::format("{}: no such model file (--model)", o.model.string()));
    const fs::path card_path = o.config.empty() ? default_card_path(o.model) : o.config;
    const InstanceModelCard card = read_instance_model_card(card_path);
    const std::vector<InputImage> images = list_images(o);
    std::map<std::string, fs::path> stems;
    for (const InputImage& image : images) {
        const auto [it, fresh] = stems.emplace(image.path.stem().string(), image.path);
        if (!fresh)
            throw Error(fmt::format("{}: same name as {}: their outputs would overwrite each other", image.path.string(),
                                    it->second.string()));
        (void)read_image_rgb(image.path);  // a corrupt image stops the run before any output
    }
    MaskRCNN model(card.config);
    load_state_dict(*model, o.model.string());
    if (!compute_device().is_cpu()) model->to(compute_device());
    ensure_writable_dir(o.out);
    if (!o.semantic.empty()) ensure_writable_dir(o.semantic);

    const auto started = std::chrono::steady_clock::now();
    InstanceSummary summary;
    std::vector<CocoDetection> results;
    nlohmann::ordered_json image_list = nlohmann::ordered_json::array();
    for (std::size_t i = 0; i < images.size(); ++i) {
        const cv::Mat rgb = read_image_rgb(images[i].path).rgb;
        const InstanceDetections d = model->detect({rgb_to_tensor(rgb)}).detections.at(0);
        for (CocoDetection& det : coco_results_of(d, images[i].id, card.category_ids)) results.push_back(std::move(det));
        const std::string stem = images[i].path.stem().string();
        const cv::Mat ids = instance_id_image(d, o.score_threshold);
        write_palette_png(o.out / (stem + ".png"), ids);
        if (!o.semantic.empty()) write_palette_png(o.semantic / (stem + ".png"), class_id_image(d, o.score_threshold));
        if (o.overlay)
            write_image_rgb(o.out / (stem + "_overlay.png"), instance_overlay(rgb, ids, d, card.class_names, o.score_threshold));
        image_list.push_back({{"id", images[i].id},
                              {"file_name", images[i].path.filename().string()},
                              {"height", rgb.rows},
                              {"width", rgb.cols}});
        ++summary.images;
        summary.detections += static_cast<std::size_t>(d.boxes.size(0));
        if (progress) progress(i + 1, images.size());
    }
    write_coco_results(o.out / "results.json", results);
    write_file_atomic(o.out / "images.json", image_list.dump(1) + "\n");
    summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return summary;
}

}  // namespace sightline
