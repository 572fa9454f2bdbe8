// Fashion-MNIST composites: 1-3 items per image, scaled up and tinted, on random textured
// backgrounds; masks from the item silhouettes. Also the IDX reader.
#include <zlib.h>

#include <cmath>
#include <mutex>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "layout.hpp"
#include "sightline/data.hpp"
#include "sightline/palette.hpp"
#include "sightline/parallel.hpp"
#include "textures.hpp"

namespace sightline {

const std::vector<std::string>& fashion_class_names() {
    static const std::vector<std::string> names = {"background", "tshirt_top", "trouser", "pullover",
                                                   "dress",      "coat",       "sandal",  "shirt",
                                                   "sneaker",    "bag",        "ankle_boot"};
    return names;
}

IdxArray read_idx(const fs::path& path) {
    if (!fs::exists(path)) throw Error(fmt::format("{}: no such IDX file", path.string()));
    // gzread reads gzip files and passes plain files through unchanged.
    gzFile file = gzopen(path.c_str(), "rb");
    if (!file) throw Error(fmt::format("{}: cannot open IDX file", path.string()));
    std::string bytes;
    char buffer[1 << 16];
    int got;
    while ((got = gzread(file, buffer, sizeof buffer)) > 0) bytes.append(buffer, static_cast<std::size_t>(got));
    int status = 0;
    const char* message = gzerror(file, &status);
    std::string zlib_message = message ? message : "";
    gzclose(file);
    if (got < 0 || (status != Z_OK && status != Z_STREAM_END))
        throw Error(fmt::format("{}: corrupt gzip data ({})", path.string(), zlib_message));
    auto u8 = [&](std::size_t i) { return static_cast<uint8_t>(bytes[i]); };
    // Magic: two zero bytes, the element type (0x08 = unsigned byte), the number of dims.
    if (bytes.size() < 4 || u8(0) != 0 || u8(1) != 0)
        throw Error(fmt::format("{}: not an IDX file (bad magic)", path.string()));
    if (u8(2) != 0x08)
        throw Error(fmt::format("{}: IDX element type 0x{:02x} is not unsigned byte (0x08)", path.string(), u8(2)));
    IdxArray out;
    const std::size_t dims = u8(3), header = 4 + 4 * dims;
    if (dims == 0 || bytes.size() < header) throw Error(fmt::format("{}: truncated IDX header", path.string()));
    std::size_t count = 1;
    for (std::size_t d = 0; d < dims; ++d) {
        std::size_t i = 4 + 4 * d;
        uint32_t v = (uint32_t(u8(i)) << 24) | (uint32_t(u8(i + 1)) << 16) | (uint32_t(u8(i + 2)) << 8) | u8(i + 3);
        out.shape.push_back(static_cast<int>(v));
        count *= v;
    }
    if (bytes.size() - header != count)
        throw Error(fmt::format("{}: IDX data holds {} bytes, the header promises {}", path.string(),
                                bytes.size() - header, count));
    out.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
    return out;
}

namespace {

// A 28x28 item pixel brighter than this (of 255) belongs to the item. Fashion-MNIST
// backgrounds are 0; a low threshold keeps the dim parts of dark garments.
constexpr int kSilhouetteThreshold = 8;

struct ItemSet {
    IdxArray images;  // [N, 28, 28]
    IdxArray labels;  // [N]
};

fs::path find_idx(const fs::path& folder, const std::string& stem) {
    for (const char* ext : {".gz", ""})
        if (fs::exists(folder / (stem + ext))) return folder / (stem + ext);
    throw Error(fmt::format("{}: no such file (install Debian's dataset-fashion-mnist package)",
                            (folder / (stem + ".gz")).string()));
}

ItemSet load_items(const fs::path& folder, const std::string& prefix) {
    ItemSet set;
    fs::path images = find_idx(folder, prefix + "-images-idx3-ubyte");
    fs::path labels = find_idx(folder, prefix + "-labels-idx1-ubyte");
    set.images = read_idx(images);
    set.labels = read_idx(labels);
    if (set.images.shape.size() != 3 || set.images.shape[1] != 28 || set.images.shape[2] != 28)
        throw Error(fmt::format("{}: expected images of shape [N, 28, 28]", images.string()));
    if (set.labels.shape.size() != 1 || set.labels.shape[0] != set.images.shape[0])
        throw Error(fmt::format("{}: expected {} labels, got shape [{}]", labels.string(), set.images.shape[0],
                                fmt::join(set.labels.shape, ", ")));
    for (uint8_t l : set.labels.data)
        if (l > 9) throw Error(fmt::format("{}: label {} outside 0..9", labels.string(), l));
    return set;
}

struct Composite {
    cv::Mat image, classes, objects;
    std::vector<std::pair<int, int>> items;  // (source index, class id)
};

Composite compose(const ItemSet& set, int first, int count, int size, Rng rng) {
    Rng bg_rng = rng.fork(1);
    cv::Mat background = detail::render_background(size, size, bg_rng);
    Composite c;
    background.convertTo(c.image, CV_8UC3);
    c.classes = cv::Mat::zeros(size, size, CV_8U);
    c.objects = cv::Mat::zeros(size, size, CV_8U);
    const int k = rng.uniform_int(1, 3);
    std::vector<cv::Rect> placed;
    for (int j = 0; j < k; ++j) {
        const int index = first + rng.uniform_int(0, count - 1);
        const int cls = set.labels.data[static_cast<std::size_t>(index)] + 1;
        cv::Mat item(28, 28, CV_8U, const_cast<uint8_t*>(set.images.data.data()) + 784 * static_cast<std::size_t>(index));
        const int side = static_cast<int>(std::lround((k == 1 ? rng.uniform(0.5, 0.75) : rng.uniform(0.35, 0.52)) * size));
        // The silhouette is thresholded at 28x28 and scaled bilinearly (cut at one half), so
        // its outline is smooth; the intensity is stretched to a maximum of 255 for shading.
        cv::Mat inside = item > kSilhouetteThreshold, silhouette, scaled;
        cv::resize(inside, silhouette, cv::Size(side, side), 0, 0, cv::INTER_LINEAR);
        silhouette = silhouette > 127;
        double brightest = 0;
        cv::minMaxLoc(item, nullptr, &brightest);
        cv::resize(item, scaled, cv::Size(side, side), 0, 0, cv::INTER_LINEAR);
        if (brightest > 0) scaled.convertTo(scaled, CV_8U, 255.0 / brightest);
        cv::Rect tight = cv::boundingRect(silhouette);
        if (tight.area() == 0) continue;
        // Random positions until the item overlaps earlier ones by at most 15 % of the
        // smaller box, keeping the least overlapping try.
        cv::Point best;
        double best_overlap = 2.0;
        for (int attempt = 0; attempt < 40 && best_overlap > 0.15; ++attempt) {
            cv::Point at(rng.uniform_int(-tight.x, size - tight.x - tight.width),
                         rng.uniform_int(-tight.y, size - tight.y - tight.height));
            cv::Rect box = tight + at;
            double overlap = 0;
            for (const auto& other : placed)
                overlap = std::max(overlap, double((box & other).area()) / std::min(box.area(), other.area()));
            if (overlap < best_overlap) best_overlap = overlap, best = at;
        }
        placed.push_back(tight + best);
        // Tinted: the item's intensity scales a random colour.
        cv::Vec3f tint = detail::hsv_color(rng.uniform(0, 360), rng.uniform(0.0, 0.8), rng.uniform(0.75, 1.0));
        for (int y = 0; y < side; ++y)
            for (int x = 0; x < side; ++x) {
                if (!silhouette.at<uint8_t>(y, x)) continue;
                int iy = y + best.y, ix = x + best.x;
                if (iy < 0 || ix < 0 || iy >= size || ix >= size) continue;
                cv::Vec3f v = tint * (0.25f + 0.75f * scaled.at<uint8_t>(y, x) / 255.f);
                c.image.at<cv::Vec3b>(iy, ix) = cv::Vec3b(cv::saturate_cast<uint8_t>(v[0]), cv::saturate_cast<uint8_t>(v[1]),
                                                          cv::saturate_cast<uint8_t>(v[2]));
                c.classes.at<uint8_t>(iy, ix) = static_cast<uint8_t>(cls);
                c.objects.at<uint8_t>(iy, ix) = static_cast<uint8_t>(j + 1);
            }
        c.items.emplace_back(index, cls);
    }
    return c;
}

}  // namespace

GenerationSummary generate_fashion(const fs::path& out, const FashionOptions& o, const ProgressFn& progress) {
    if (o.n < 1) throw UsageError(fmt::format("--n must be at least 1, got {}", o.n));
    if (o.size < 48 || o.size > 1024) throw UsageError(fmt::format("--size must be in 48..1024, got {}", o.size));
    const ItemSet train = load_items(o.source, "train"), test = load_items(o.source, "t10k");
    detail::make_layout_dirs(out, o.instances, false);

    struct Split {
        std::string name;
        int images;
        uint64_t code;
        const ItemSet* set;
        int first, count;  // the source items this split draws from
    };
    const int n_eval = std::max(1, static_cast<int>(std::lround(o.n * 0.2)));
    const int half = test.images.shape[0] / 2;
    const std::vector<Split> splits = {{"train", o.n, 1, &train, 0, train.images.shape[0]},
                                       {"val", n_eval, 2, &test, 0, half},
                                       {"test", n_eval, 3, &test, half, test.images.shape[0] - half}};
    std::vector<std::pair<const Split*, int>> items;
    for (const auto& s : splits)
        for (int i = 0; i < s.images; ++i) items.emplace_back(&s, i);
    std::vector<std::string> ids(items.size());
    std::vector<std::vector<int>> labels(items.size());
    std::vector<std::string> sources(items.size());
    std::mutex progress_mutex;
    std::size_t done = 0;

    detail::parallel_for_each(items.size(), o.threads, [&](std::size_t i, int) {
        const Split& split = *items[i].first;
        const Rng rng(mix_seed(mix_seed(o.seed ^ 0xfa5410ULL, split.code), static_cast<uint64_t>(items[i].second)));
        Composite c = compose(*split.set, split.first, split.count, o.size, rng);
        ids[i] = fmt::format("{}_{:06d}", split.name, items[i].second);
        labels[i] = detail::labels_in_mask(c.classes);
        for (std::size_t j = 0; j < c.items.size(); ++j)
            sources[i] += fmt::format("{}{}:{}", j ? ";" : "", split.set == &train ? "train" : "t10k", c.items[j].first);
        write_image_rgb(out / detail::kImages / (ids[i] + ".png"), c.image);
        write_palette_png(out / detail::kClassMasks / (ids[i] + ".png"), c.classes);
        if (o.instances) write_palette_png(out / detail::kInstanceMasks / (ids[i] + ".png"), c.objects);
        if (progress) {
            std::lock_guard<std::mutex> lock(progress_mutex);
            progress(++done, items.size());
        }
    });

    GenerationSummary summary;
    std::vector<std::pair<std::string, std::vector<std::string>>> lists;
    std::vector<std::pair<std::string, std::vector<int>>> label_rows;
    std::string items_csv = "image,split,items\n";
    for (const auto& s : splits) lists.push_back({s.name, {}});
    for (std::size_t i = 0; i < items.size(); ++i) {
        for (auto& [name, list] : lists)
            if (name == items[i].first->name) list.push_back(ids[i]);
        label_rows.push_back({ids[i], labels[i]});
        items_csv += fmt::format("{},{},{}\n", ids[i], items[i].first->name, sources[i]);
    }
    detail::write_split_files(out, lists);
    detail::write_labels_csv(out, fashion_class_names(), label_rows);
    write_file_atomic(out / "items.csv", items_csv);
    detail::write_names(out / "classes.txt", fashion_class_names());
    for (const auto& [name, list] : lists) summary.split_sizes[name] = list.size();
    summary.images = items.size();

    nlohmann::ordered_json meta;
    meta["generator"] = "sightline data fashion";
    meta["parameters"] = {{"n", o.n}, {"size", o.size}, {"instances", o.instances}, {"seed", o.seed},
                          {"source", o.source.string()}};
    meta["classes"] = fashion_class_names();
    meta["splits"] = summary.split_sizes;
    meta["silhouette_threshold"] = kSilhouetteThreshold;
    meta["sources"] = {{"train", "train-images-idx3-ubyte items 0..59999"},
                       {"val", fmt::format("t10k items 0..{}", half - 1)},
                       {"test", fmt::format("t10k items {}..{}", half, test.images.shape[0] - 1)}};
    if (o.instances) detail::write_coco_instance_files(out, {"train", "val", "test"});
    write_file_atomic(out / "dataset.json", meta.dump(2) + "\n");
    return summary;
}

}  // namespace sightline
