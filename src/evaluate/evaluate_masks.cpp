// sightline eval on files: pair the masks, check them all, read and count them in parallel.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <fstream>

#include <fmt/format.h>

#include "sightline/evaluate.hpp"
#include "sightline/palette.hpp"
#include "sightline/parallel.hpp"

namespace sightline {

namespace {

const std::vector<std::string> kVocNames = {
    "background", "aeroplane", "bicycle", "bird",  "boat",        "bottle", "bus",
    "car",        "cat",       "chair",   "cow",   "diningtable", "dog",    "horse",
    "motorbike",  "person",    "pottedplant", "sheep", "sofa",    "train",  "tvmonitor"};

std::string trim(const std::string& s) {
    auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return "";
    auto e = s.find_last_not_of(" \t\r\n");
    return s.substr(b, e - b + 1);
}

std::vector<std::string> read_lines(const fs::path& path) {
    std::ifstream in(path);
    if (!in) throw Error(fmt::format("{}: cannot open file", path.string()));
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(trim(line));
    while (!lines.empty() && lines.back().empty()) lines.pop_back();
    return lines;
}

// The PNG masks of a folder, by stem, sorted.
std::vector<std::string> png_stems(const fs::path& dir, const char* what) {
    if (!fs::exists(dir)) throw Error(fmt::format("{}: no such {} folder", dir.string(), what));
    if (!fs::is_directory(dir))
        throw Error(fmt::format("{}: the {} masks must be a folder of PNG files", dir.string(), what));
    std::vector<std::string> stems;
    for (const auto& e : fs::directory_iterator(dir)) {
        std::string ext = e.path().extension().string();
        std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
        if (e.is_regular_file() && ext == ".png") stems.push_back(e.path().stem().string());
    }
    std::sort(stems.begin(), stems.end());
    if (stems.empty()) throw Error(fmt::format("{}: folder holds no PNG {} masks", dir.string(), what));
    return stems;
}

fs::path find_png(const fs::path& dir, const std::string& stem) {
    for (const char* ext : {".png", ".PNG"}) {
        fs::path p = dir / (stem + ext);
        if (fs::exists(p)) return p;
    }
    return dir / (stem + ".png");
}

std::string list_some(const std::vector<std::string>& names, std::size_t shown) {
    std::string out;
    for (std::size_t i = 0; i < names.size() && i < shown; ++i) out += (i ? ", " : "") + names[i];
    if (names.size() > shown) out += fmt::format(", ... ({} more)", names.size() - shown);
    return out;
}

}  // namespace

std::vector<std::string> resolve_class_names(const std::string& classes, const fs::path& gt,
                                             const std::string& split) {
    std::string spec = trim(classes);
    if (!spec.empty() && std::all_of(spec.begin(), spec.end(), ::isdigit)) {
        int k = spec.size() > 3 ? 1000 : std::stoi(spec);
        if (k < 1 || k > 255)
            throw UsageError(fmt::format("--classes {}: the class count must be 1..255 (8-bit masks)", spec));
        std::vector<std::string> names(static_cast<std::size_t>(k));
        for (int i = 0; i < k; ++i) names[i] = i == 0 ? "background" : fmt::format("class_{}", i);
        return names;
    }
    fs::path file = spec;
    if (spec.empty()) {
        file = gt / "classes.txt";
        if (!fs::exists(file)) {
            if (!split.empty()) return kVocNames;  // a VOC root without classes.txt
            throw UsageError(
                "--classes is required: a class count (e.g. 21) or a classes.txt with one name per "
                "line (line i = class i, background first)");
        }
    }
    if (!fs::exists(file))
        throw UsageError(fmt::format("--classes {}: neither a class count nor an existing classes file", spec));
    std::vector<std::string> names = read_lines(file);
    if (names.empty()) throw Error(fmt::format("{}: classes file is empty", file.string()));
    if (names.size() > 255)
        throw Error(fmt::format("{}: {} classes, but 8-bit masks hold at most 255", file.string(), names.size()));
    for (std::size_t i = 0; i < names.size(); ++i)
        if (names[i].empty())
            throw Error(fmt::format("{}: line {} is empty (line i names class i)", file.string(), i + 1));
    return names;
}

EvalResult evaluate_masks(const EvalOptions& options,
                          const std::function<void(std::size_t, std::size_t)>& progress) {
    EvalResult result;
    // The folders first: a missing one is the error to report, not what it would have held.
    if (!fs::is_directory(options.gt))
        throw Error(fmt::format("{}: no such ground-truth folder (--gt)", options.gt.string()));
    if (!fs::is_directory(options.pred))
        throw Error(fmt::format("{}: no such prediction folder", options.pred.string()));
    result.class_names = resolve_class_names(options.classes, options.gt, options.split);
    const int k = static_cast<int>(result.class_names.size());
    ConfusionMatrix total(k, options.ignore);  // checks the ignore value first

    // 1. Pair ground truth with predictions (by file stem).
    fs::path gt_dir = options.gt;
    std::vector<std::string> gt_ids;
    if (!options.split.empty()) {
        fs::path list = options.gt / "ImageSets" / "Segmentation" / (options.split + ".txt");
        if (!fs::exists(list))
            throw Error(fmt::format("{}: no such split file (--gt must be a VOC root with --split)", list.string()));
        for (const std::string& line : read_lines(list))
            if (!line.empty()) gt_ids.push_back(line.substr(0, line.find_first_of(" \t")));
        if (gt_ids.empty()) throw Error(fmt::format("{}: split lists no images", list.string()));
        gt_dir = options.gt / "SegmentationClass";
        std::vector<std::string> absent;
        for (const std::string& id : gt_ids)
            if (!fs::exists(find_png(gt_dir, id))) absent.push_back(id);
        if (!absent.empty())
            throw Error(fmt::format("{}: no ground-truth mask for {} of the {} images of split {}: {}",
                                    gt_dir.string(), absent.size(), gt_ids.size(), options.split,
                                    list_some(absent, 10)));
    } else {
        gt_ids = png_stems(gt_dir, "ground-truth");
    }
    if (!fs::is_directory(options.pred))
        throw Error(fmt::format("{}: no such prediction folder", options.pred.string()));
    png_stems(options.pred, "predicted");  // an empty prediction folder is its own error
    std::vector<std::string> missing;
    for (const std::string& id : gt_ids) {
        if (fs::exists(find_png(options.pred, id))) result.ids.push_back(id);
        else missing.push_back(id);
    }
    if (!missing.empty() && !options.allow_missing)
        throw Error(fmt::format("{}: no prediction for {} of {} ground-truth masks: {} "
                                "(--allow-missing skips them)",
                                options.pred.string(), missing.size(), gt_ids.size(),
                                list_some(missing, 10)));
    result.skipped = missing;
    if (result.ids.empty())
        throw Error(fmt::format("{}: none of the {} ground-truth masks has a prediction",
                                options.pred.string(), gt_ids.size()));

    // 2. Read and count in parallel; every check throws before anything is returned.
    const std::size_t n = result.ids.size();
    std::vector<ConfusionMatrix> per_image;
    if (options.per_image) per_image.assign(n, total);
    const int workers = detail::worker_count(options.threads, n);
    std::vector<ConfusionMatrix> partial(static_cast<std::size_t>(workers), total);
    std::atomic<std::size_t> done{0};
    detail::parallel_for_each(n, workers, [&](std::size_t i, int worker) {
        MaskNames names{find_png(options.pred, result.ids[i]).string(),
                        find_png(gt_dir, result.ids[i]).string()};
        cv::Mat gt = read_index_png(names.gt);
        cv::Mat pred = read_index_png(names.pred);
        if (options.per_image) {
            per_image[i].accumulate(pred, gt, names);
            partial[worker].merge(per_image[i]);
        } else {
            partial[worker].accumulate(pred, gt, names);
        }
        std::size_t d = ++done;
        if (progress) progress(d, n);
    });
    for (const ConfusionMatrix& m : partial) total.merge(m);

    result.confusion = total;
    result.metrics = total.metrics(result.class_names);
    for (std::size_t i = 0; i < per_image.size(); ++i)
        result.per_image.push_back({result.ids[i], per_image[i].metrics(result.class_names)});
    return result;
}

}  // namespace sightline
