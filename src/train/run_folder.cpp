#include "train/run_folder.hpp"

#include <fmt/format.h>

#include "train/checkpoint.hpp"
#include "sightline/folders.hpp"

namespace sightline::detail {

using nlohmann::json;

fs::path checkpoint_path(const fs::path& out) { return out / "checkpoint" / "checkpoint.pt"; }

json open_run_folder(const fs::path& out, bool resume,
                     const std::function<void(const fs::path& checkpoint, const json& meta)>& check_resume) {
    const fs::path checkpoint = checkpoint_path(out);
    json meta;
    if (resume) {
        meta = read_checkpoint_meta(checkpoint);
        check_resume(checkpoint, meta);
    } else {
        for (const fs::path& existing : {checkpoint, out / "model.pt"})
            if (fs::exists(existing))
                throw Error(fmt::format("{}: a run exists here; pass --resume to continue it or choose another --out",
                                        existing.string()));
    }
    // Created with the first checkpoint: a run refused later (an architecture option, the data)
    // leaves nothing behind.
    check_writable_dir(out);
    return meta;
}

void check_options_match(const fs::path& checkpoint, const json& meta, const json& wanted, FlagValues style) {
    auto show = [style](const json& v) {
        return style == FlagValues::kBare && v.is_string() ? v.get<std::string>() : v.dump();
    };
    const json& old = meta.at("options");
    for (const auto& [flag, value] : wanted.items())
        if (!old.contains(flag) || old[flag] != value)
            throw Error(fmt::format("{}: the checkpoint was made with --{} {}, this run has --{} {} (resume with "
                                    "the same options)",
                                    checkpoint.string(), flag, old.contains(flag) ? show(old[flag]) : "(unset)", flag,
                                    show(value)));
}

RunProgress read_progress(const json& meta) {
    RunProgress p;
    p.epoch = meta.at("epochs_done").get<int64_t>();
    p.step_in_epoch = meta.at("step_in_epoch").get<int64_t>();
    p.global_step = meta.at("global_step").get<int64_t>();
    p.history = meta.at("metrics");
    p.partial_loss = meta.at("partial").at("loss_sum").get<double>();
    p.partial_seconds = meta.at("partial").at("seconds").get<double>();
    p.partial_wait = meta.at("partial").at("wait").get<double>();
    return p;
}

RunProgress epoch_finished(const RunProgress& progress) {
    RunProgress next;
    next.epoch = progress.epoch + 1;
    next.global_step = progress.global_step;
    next.history = progress.history;
    return next;
}

RunProgress epoch_interrupted(const RunProgress& progress, double loss_sum, double seconds, double wait) {
    RunProgress at = progress;
    at.partial_loss = loss_sum;
    at.partial_seconds = seconds;
    at.partial_wait = wait;
    return at;
}

json checkpoint_meta(const json& options, const std::vector<std::string>& class_names, std::size_t train_images,
                     const RunProgress& at, const std::vector<std::size_t>& next_order) {
    json m;
    m["options"] = options;
    m["class_names"] = class_names;
    m["train_images"] = train_images;
    m["epochs_done"] = at.epoch;
    m["step_in_epoch"] = at.step_in_epoch;
    m["global_step"] = at.global_step;
    m["epoch_order"] = next_order;
    m["metrics"] = at.history;
    m["partial"] = {{"loss_sum", at.partial_loss}, {"seconds", at.partial_seconds}, {"wait", at.partial_wait}};
    return m;
}

void check_data_order(const fs::path& checkpoint, const json& meta, std::size_t train_images, int64_t total_epochs,
                      const BatchLoader& loader) {
    const int64_t epoch = meta.at("epochs_done").get<int64_t>();
    if (meta.at("train_images").get<std::size_t>() != train_images ||
        (epoch < total_epochs && meta.at("epoch_order").get<std::vector<std::size_t>>() != loader.epoch_order(epoch)))
        throw Error(fmt::format("{}: the saved data order differs from this data's (was the dataset changed?)",
                                checkpoint.string()));
}

}  // namespace sightline::detail
