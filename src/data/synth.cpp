// Synthetic shortcut scenes: objects on contexts, with a knob for how often the context
// agrees with the object (train) and counterfactual twins (val, test). See data.hpp.
#include <cmath>
#include <mutex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "layout.hpp"
#include "shapes.hpp"
#include "sightline/data.hpp"
#include "sightline/palette.hpp"
#include "sightline/parallel.hpp"
#include "textures.hpp"

namespace sightline {

const std::vector<std::string>& synth_class_names() {
    static const std::vector<std::string> names = {"background", "boat", "train", "plane",
                                                   "car",        "cow",  "fish"};
    return names;
}

const std::vector<std::string>& synth_context_names() {
    static const std::vector<std::string> names = {"none", "water", "tracks", "sky",
                                                   "road", "grass", "reef"};
    return names;
}

namespace {

constexpr int kNumClasses = 6;
enum Version { kTrain, kMatched, kSwapped, kContextOnly };
const char* version_name(Version v) {
    static const char* names[] = {"train", "matched", "swapped", "context"};
    return names[v];
}

struct PlacedObject {
    int cls = 0;
    int band = 0;
    std::vector<detail::ObjectPart> parts;
    detail::ObjectPose pose;
};

// What stays the same across the versions of a scene: the region layout (which pixels show
// band i's context, which the neutral filler) and the objects with their poses.
struct Scene {
    cv::Mat region;  // CV_8U: band index, or kFiller
    std::vector<PlacedObject> objects;
    static constexpr uint8_t kFiller = 255;
};

// A horizon (the part above it is neutral filler, unless the context fills the whole image)
// and 1-3 vertical bands with wavy edges, one band per object.
Scene make_scene(const SynthOptions& o, Rng rng) {
    Rng layout = rng.fork(1), objects = rng.fork(2);
    const int size = o.size, k = o.multi ? layout.uniform_int(1, 3) : 1;
    const float sc = size / 96.f;
    const float cover = static_cast<float>(layout.uniform(0.65, 1.0));
    const float horizon = cover > 0.93f ? -1e6f : size * (1 - cover);
    const float slope = static_cast<float>(layout.uniform(-0.12, 0.12));
    const float wave = static_cast<float>(layout.uniform(0, 2.5)) * sc;
    const float wave_len = static_cast<float>(layout.uniform(30, 70)) * sc;
    const float wave_phase = static_cast<float>(layout.uniform(0, 6.283));
    std::vector<float> edges(static_cast<std::size_t>(k + 1));
    for (int i = 0; i <= k; ++i)
        edges[static_cast<std::size_t>(i)] =
            (i == 0 || i == k) ? float(size * i / k)
                               : size * (float(i) / k + static_cast<float>(layout.uniform(-0.05, 0.05)));
    const float edge_wave = static_cast<float>(layout.uniform(0, 3)) * sc;
    const float edge_phase = static_cast<float>(layout.uniform(0, 6.283));

    Scene scene;
    scene.region = cv::Mat(size, size, CV_8U);
    for (int y = 0; y < size; ++y)
        for (int x = 0; x < size; ++x) {
            float hy = horizon + slope * (x - size / 2.f) + wave * std::sin(6.283f * x / wave_len + wave_phase);
            uint8_t r = Scene::kFiller;
            if (y >= hy) {
                float shifted = x - edge_wave * std::sin(6.283f * y / (20 * sc) + edge_phase);
                r = 0;
                while (r + 1 < k && shifted >= edges[r + 1u]) ++r;
            }
            scene.region.at<uint8_t>(y, x) = r;
        }

    for (int i = 0; i < k; ++i) {
        PlacedObject obj;
        obj.cls = objects.uniform_int(1, kNumClasses);
        obj.band = i;
        Rng shape_rng = objects.fork(10 + static_cast<uint64_t>(i));
        obj.parts = detail::object_parts(obj.cls, shape_rng);
        float band_w = edges[i + 1u] - edges[static_cast<std::size_t>(i)];
        obj.pose.length = static_cast<float>(k == 1 ? objects.uniform(0.42, 0.68) * size
                                                    : objects.uniform(0.75, 0.95) * band_w);
        obj.pose.angle = static_cast<float>(objects.uniform(-0.35, 0.35));
        obj.pose.aspect = static_cast<float>(objects.uniform(0.85, 1.2));
        obj.pose.flip = objects.bernoulli(0.5);
        obj.pose.centre = {0, 0};
        cv::Rect2f box = detail::object_bounds(obj.parts, obj.pose);
        // Inside its band and the image, top at most 20 % of its height above the horizon.
        float x_lo = edges[static_cast<std::size_t>(i)] - box.x, x_hi = edges[i + 1u] - (box.x + box.width);
        float cx = x_lo <= x_hi ? static_cast<float>(objects.uniform(x_lo, x_hi))
                                : (edges[static_cast<std::size_t>(i)] + edges[i + 1u]) / 2 - (box.x + box.width / 2);
        cx = std::clamp(cx, -box.x, std::max(-box.x, size - (box.x + box.width)));
        float y_lo = std::max(-box.y, horizon - box.y - 0.2f * box.height), y_hi = size - (box.y + box.height);
        float cy = y_lo <= y_hi ? static_cast<float>(objects.uniform(y_lo, y_hi)) : y_hi;
        obj.pose.centre = {cx, cy};
        scene.objects.push_back(std::move(obj));
    }
    return scene;
}

struct Rendered {
    cv::Mat image;     // CV_8UC3 RGB
    cv::Mat classes;   // object class ids
    cv::Mat objects;   // instance ids 1..k
    cv::Mat contexts;  // context class ids, 0 = filler or covered
};

// Draws the scene with band i showing the context of class contexts[i]. The texture of a
// (band, class) pair comes from its own random stream, so matched and context-only share
// their contexts pixel for pixel and the objects are the same in every version.
Rendered render(const Scene& scene, const std::vector<detail::ObjectLayer>& layers,
                const std::vector<int>& contexts, bool with_objects, const Rng& rng) {
    const int size = scene.region.rows;
    std::vector<cv::Mat> textures;
    for (std::size_t b = 0; b < contexts.size(); ++b) {
        Rng t = rng.fork(100 + 16 * b + static_cast<uint64_t>(contexts[b]));
        textures.push_back(detail::render_context(contexts[b], size, size, t));
    }
    Rng filler_rng = rng.fork(3);
    cv::Mat filler = detail::render_filler(size, size, filler_rng);
    Rendered out;
    out.image = cv::Mat(size, size, CV_8UC3);
    out.classes = cv::Mat::zeros(size, size, CV_8U);
    out.objects = cv::Mat::zeros(size, size, CV_8U);
    out.contexts = cv::Mat::zeros(size, size, CV_8U);
    for (int y = 0; y < size; ++y)
        for (int x = 0; x < size; ++x) {
            uint8_t r = scene.region.at<uint8_t>(y, x);
            const cv::Mat& src = r == Scene::kFiller ? filler : textures[r];
            const cv::Vec3f& v = src.at<cv::Vec3f>(y, x);
            out.image.at<cv::Vec3b>(y, x) = cv::Vec3b(cv::saturate_cast<uint8_t>(v[0]), cv::saturate_cast<uint8_t>(v[1]),
                                                      cv::saturate_cast<uint8_t>(v[2]));
            out.contexts.at<uint8_t>(y, x) = r == Scene::kFiller ? 0 : static_cast<uint8_t>(contexts[r]);
        }
    if (!with_objects) return out;
    for (std::size_t i = 0; i < layers.size(); ++i) {
        const uint8_t cls = static_cast<uint8_t>(scene.objects[i].cls);
        layers[i].rgb.copyTo(out.image, layers[i].mask);
        out.classes.setTo(cls, layers[i].mask);
        out.objects.setTo(static_cast<int>(i + 1), layers[i].mask);
        out.contexts.setTo(0, layers[i].mask);
    }
    return out;
}

struct Record {
    std::string id;
    std::string split;
    int scene = 0;
    Version version = kTrain;
    std::vector<int> labels;
    std::vector<int> objects;   // class per object
    std::vector<int> contexts;  // context class under each object
};

// A context for each band: in train the object's own with probability p, otherwise one of
// the other classes; in swapped versions a class of none of the image's objects.
std::vector<int> choose_contexts(const Scene& scene, Version version, double p, Rng& rng) {
    std::vector<int> out;
    std::vector<bool> present(kNumClasses + 1, false);
    for (const auto& o : scene.objects) present[static_cast<std::size_t>(o.cls)] = true;
    for (const auto& o : scene.objects) {
        if (version == kMatched || version == kContextOnly || (version == kTrain && rng.bernoulli(p))) {
            out.push_back(o.cls);
            continue;
        }
        std::vector<int> pool;
        for (int c = 1; c <= kNumClasses; ++c)
            if (version == kTrain ? c != o.cls : !present[static_cast<std::size_t>(c)]) pool.push_back(c);
        out.push_back(pool[static_cast<std::size_t>(rng.uniform_int(0, static_cast<int>(pool.size()) - 1))]);
    }
    return out;
}

void write_rendered(const fs::path& root, const std::string& id, const Rendered& r, bool instances) {
    write_image_rgb(root / detail::kImages / (id + ".png"), r.image);
    write_palette_png(root / detail::kClassMasks / (id + ".png"), r.classes);
    write_palette_png(root / detail::kContextMasks / (id + ".png"), r.contexts);
    if (instances) write_palette_png(root / detail::kInstanceMasks / (id + ".png"), r.objects);
}

std::string names_of(const std::vector<int>& ids, const std::vector<std::string>& names) {
    std::string s;
    for (std::size_t i = 0; i < ids.size(); ++i) s += (i ? ";" : "") + names[static_cast<std::size_t>(ids[i])];
    return s;
}

}  // namespace

GenerationSummary generate_synth(const fs::path& out, const SynthOptions& o, const ProgressFn& progress) {
    if (o.n < 1) throw UsageError(fmt::format("--n must be at least 1, got {}", o.n));
    if (o.size < 32 || o.size > 1024) throw UsageError(fmt::format("--size must be in 32..1024, got {}", o.size));
    if (!(o.spurious >= 0.0 && o.spurious <= 1.0))
        throw UsageError(fmt::format("--spurious must be a probability in [0, 1], got {}", o.spurious));
    detail::make_layout_dirs(out, o.instances, true);

    // Work items: every train scene once, every val/test scene with its three versions.
    struct Split {
        std::string name;
        int scenes;
        uint64_t code;
    };
    const int n_eval = std::max(1, static_cast<int>(std::lround(o.n * 0.2)));
    const std::vector<Split> splits = {{"train", o.n, 1}, {"val", n_eval, 2}, {"test", n_eval, 3}};
    std::vector<std::pair<const Split*, int>> items;
    std::vector<std::size_t> first_record;
    std::size_t total_images = 0;
    for (const auto& s : splits)
        for (int i = 0; i < s.scenes; ++i) {
            items.emplace_back(&s, i);
            first_record.push_back(total_images);
            total_images += s.code == 1 ? 1 : 3;
        }
    std::vector<Record> records(total_images);
    std::mutex progress_mutex;
    std::size_t done = 0;

    detail::parallel_for_each(items.size(), o.threads, [&](std::size_t item, int) {
        const Split& split = *items[item].first;
        const int index = items[item].second;
        const Rng rng(mix_seed(mix_seed(o.seed, split.code), static_cast<uint64_t>(index)));
        const Scene scene = make_scene(o, rng);
        std::vector<detail::ObjectLayer> layers;
        for (std::size_t i = 0; i < scene.objects.size(); ++i) {
            Rng look = rng.fork(20 + i);
            layers.push_back(detail::draw_object(scene.objects[i].parts, scene.objects[i].pose,
                                                 cv::Size(o.size, o.size), look));
        }
        std::vector<int> object_classes;
        for (const auto& obj : scene.objects) object_classes.push_back(obj.cls);
        Rng choice = rng.fork(4);
        const std::vector<Version> versions =
            split.code == 1 ? std::vector<Version>{kTrain} : std::vector<Version>{kMatched, kSwapped, kContextOnly};
        std::vector<int> matched_labels;
        for (std::size_t v = 0; v < versions.size(); ++v) {
            Record& rec = records[first_record[item] + v];
            rec.split = split.name;
            rec.scene = index;
            rec.version = versions[v];
            rec.id = versions[v] == kTrain ? fmt::format("train_{:06d}", index)
                                          : fmt::format("{}_{:06d}_{}", split.name, index, version_name(versions[v]));
            rec.objects = object_classes;
            rec.contexts = choose_contexts(scene, versions[v], o.spurious, choice);
            Rendered r = render(scene, layers, rec.contexts, versions[v] != kContextOnly, rng);
            // Labels follow the mask; the context-only twin keeps its scene's labels.
            rec.labels = versions[v] == kContextOnly ? matched_labels : detail::labels_in_mask(r.classes);
            if (versions[v] == kMatched) matched_labels = rec.labels;
            write_rendered(out, rec.id, r, o.instances);
        }
        if (progress) {
            std::lock_guard<std::mutex> lock(progress_mutex);
            done += versions.size();
            progress(done, total_images);
        }
    });

    // Bookkeeping files, in record order (independent of the thread schedule).
    GenerationSummary summary;
    std::vector<std::pair<std::string, std::vector<std::string>>> lists;
    for (const auto& s : splits) {
        lists.push_back({s.name, {}});
        if (s.code != 1)
            for (Version v : {kMatched, kSwapped, kContextOnly})
                lists.push_back({s.name + "_" + version_name(v), {}});
    }
    std::vector<std::pair<std::string, std::vector<int>>> label_rows;
    std::string scenes_csv = "image,split,scene,version,objects,contexts\n";
    std::size_t own = 0, train_objects = 0;
    for (const auto& rec : records) {
        for (auto& [name, ids] : lists)
            if (name == rec.split || name == rec.split + "_" + version_name(rec.version)) ids.push_back(rec.id);
        label_rows.push_back({rec.id, rec.labels});
        scenes_csv += fmt::format("{},{},{},{},{},{}\n", rec.id, rec.split, rec.scene, version_name(rec.version),
                                  names_of(rec.objects, synth_class_names()),
                                  names_of(rec.contexts, synth_context_names()));
        if (rec.version == kTrain)
            for (std::size_t i = 0; i < rec.objects.size(); ++i, ++train_objects)
                own += rec.objects[i] == rec.contexts[i];
    }
    detail::write_split_files(out, lists);
    detail::write_labels_csv(out, synth_class_names(), label_rows);
    write_file_atomic(out / "scenes.csv", scenes_csv);
    detail::write_names(out / "classes.txt", synth_class_names());
    detail::write_names(out / "contexts.txt", synth_context_names());
    for (const auto& [name, ids] : lists) summary.split_sizes[name] = ids.size();
    summary.images = records.size();
    summary.train_on_own_context = train_objects ? double(own) / double(train_objects) : 0.0;

    nlohmann::ordered_json meta;
    meta["generator"] = "sightline data synth";
    meta["parameters"] = {{"n", o.n},           {"size", o.size},         {"spurious", o.spurious},
                          {"multi", o.multi},   {"instances", o.instances}, {"seed", o.seed}};
    meta["classes"] = synth_class_names();
    meta["contexts"] = synth_context_names();
    meta["splits"] = summary.split_sizes;
    meta["train_on_own_context"] = summary.train_on_own_context;
    meta["versions"] = {{"matched", "object on its own class's context"},
                        {"swapped", "same object and pose on a context of a class not in the image"},
                        {"context", "objects removed; labels.csv keeps the scene's labels"}};
    if (o.instances) detail::write_coco_instance_files(out, {"train", "val", "test"});
    write_file_atomic(out / "dataset.json", meta.dump(2) + "\n");
    return summary;
}

}  // namespace sightline
