#include "train/checkpoint.hpp"

#include <sstream>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

namespace sightline::detail {

namespace {

constexpr const char* kFormat = "sightline-classifier-checkpoint-1";

std::string shape_of(const torch::Tensor& t) { return fmt::format("[{}]", fmt::join(t.sizes(), ", ")); }

torch::serialize::InputArchive open_archive(const fs::path& path) {
    if (!fs::exists(path)) throw Error(fmt::format("{}: no checkpoint to resume from", path.string()));
    torch::serialize::InputArchive archive;
    try {
        archive.load_from(path.string());
    } catch (const c10::Error& e) {
        std::string what = e.what_without_backtrace();
        throw Error(fmt::format("{}: not a readable checkpoint ({})", path.string(), what.substr(0, what.find('\n'))));
    }
    return archive;
}

}  // namespace

void save_checkpoint(const fs::path& path, const nlohmann::json& meta, const torch::jit::Module& model,
                     torch::optim::Optimizer& optimizer, const PartialEpoch& partial,
                     const std::vector<std::pair<std::string, torch::Tensor>>& extra) {
    torch::serialize::OutputArchive archive;
    nlohmann::json with_format = meta;
    with_format["format"] = kFormat;
    archive.write("meta", c10::IValue(with_format.dump()));
    torch::serialize::OutputArchive weights;
    for (const auto& p : model.named_parameters(true)) weights.write(p.name, p.value.detach());
    for (const auto& b : model.named_buffers(true)) weights.write(b.name, b.value, /*is_buffer=*/true);
    archive.write("model", weights);
    torch::serialize::OutputArchive optim;
    optimizer.save(optim);
    archive.write("optimizer", optim);
    if (partial.logits.defined()) {
        archive.write("partial_logits", partial.logits);
        archive.write("partial_targets", partial.targets);
    }
    for (const auto& [name, tensor] : extra) archive.write("extra_" + name, tensor.detach());
    archive.write("torch_generator", at::detail::getDefaultCPUGenerator().get_state());
    std::ostringstream bytes;
    archive.save_to(bytes);
    write_file_atomic(path, bytes.str());
}

nlohmann::json read_checkpoint_meta(const fs::path& path) {
    torch::serialize::InputArchive archive = open_archive(path);
    c10::IValue meta;
    if (!archive.try_read("meta", meta) || !meta.isString())
        throw Error(fmt::format("{}: not a sightline classifier checkpoint (no meta data)", path.string()));
    nlohmann::json j = nlohmann::json::parse(meta.toStringRef(), nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || j.value("format", "") != kFormat)
        throw Error(fmt::format("{}: not a sightline classifier checkpoint (format '{}', expected '{}')", path.string(),
                                j.is_object() ? j.value("format", "") : "", kFormat));
    return j;
}

torch::Tensor read_checkpoint_extra(const fs::path& path, const std::string& name) {
    torch::serialize::InputArchive archive = open_archive(path);
    torch::Tensor t;
    if (!archive.try_read("extra_" + name, t))
        throw Error(fmt::format("{}: has no tensor '{}' (a checkpoint of another objective?)", path.string(), name));
    return t;
}

PartialEpoch load_checkpoint_state(const fs::path& path, torch::jit::Module& model,
                                   torch::optim::Optimizer& optimizer) {
    torch::serialize::InputArchive archive = open_archive(path);
    torch::serialize::InputArchive weights;
    archive.read("model", weights);
    torch::NoGradGuard no_grad;
    auto restore = [&](const std::string& name, torch::Tensor target, bool is_buffer) {
        torch::Tensor saved;
        if (!weights.try_read(name, saved, is_buffer))
            throw Error(fmt::format("{}: has no {} '{}' (a checkpoint of another architecture?)", path.string(),
                                    is_buffer ? "buffer" : "parameter", name));
        if (saved.sizes() != target.sizes())
            throw Error(fmt::format("{}: {} has shape {} in the checkpoint, {} in the model", path.string(), name,
                                    shape_of(saved), shape_of(target)));
        target.copy_(saved);
    };
    for (const auto& p : model.named_parameters(true)) restore(p.name, p.value, false);
    for (const auto& b : model.named_buffers(true)) restore(b.name, b.value, true);
    torch::serialize::InputArchive optim;
    archive.read("optimizer", optim);
    optimizer.load(optim);
    torch::Tensor generator;
    archive.read("torch_generator", generator);
    at::Generator default_generator = at::detail::getDefaultCPUGenerator();
    default_generator.set_state(generator);
    PartialEpoch partial;
    torch::Tensor logits, targets;
    if (archive.try_read("partial_logits", logits) && archive.try_read("partial_targets", targets))
        partial = {logits, targets};
    return partial;
}

}  // namespace sightline::detail
