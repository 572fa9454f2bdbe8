// CAM files (<id>.npy, float32 [C,H,W]) and threshold lists, with the input checks.
#include <cmath>

#include <fmt/format.h>
#include <torch/torch.h>

#include "sightline/wsss.hpp"

namespace sightline {

void write_cam_file(const fs::path& path, const torch::Tensor& cams, const std::vector<int>& keys,
                    int64_t num_classes) {
    torch::Tensor full = torch::zeros({num_classes, cams.size(1), cams.size(2)}, torch::kFloat32);
    for (std::size_t i = 0; i < keys.size(); ++i) full[keys[i] - 1].copy_(cams[static_cast<int64_t>(i)]);
    full = full.contiguous();
    write_npy_f32(path, {num_classes, full.size(1), full.size(2)}, full.data_ptr<float>());
}

torch::Tensor read_cam_file(const fs::path& path, const std::vector<int>& keys, int64_t num_classes,
                            int64_t height, int64_t width) {
    NpyArray a = read_npy(path);
    if (a.shape.size() != 3 || a.shape[0] != num_classes)
        throw Error(fmt::format("{}: expected CAMs of shape [{},H,W] (one map per object class), got [{}]",
                                path.string(), num_classes, fmt::join(a.shape, ",")));
    if (a.shape[1] != height || a.shape[2] != width)
        throw Error(fmt::format("{}: CAMs are {} x {} (H x W) but the image is {} x {}", path.string(), a.shape[1],
                                a.shape[2], height, width));
    std::vector<float> v = a.to_float();
    const int64_t plane = height * width;
    std::vector<bool> labelled(static_cast<std::size_t>(num_classes), false);
    for (int k : keys) labelled[static_cast<std::size_t>(k - 1)] = true;
    for (int64_t c = 0; c < num_classes; ++c)
        for (int64_t i = 0; i < plane; ++i) {
            float x = v[static_cast<std::size_t>(c * plane + i)];
            if (!std::isfinite(x) || x < 0.f || x > 1.f)
                throw Error(fmt::format("{}: CAM value {} at class {} pixel ({}, {}) is not in [0, 1]", path.string(),
                                        x, c + 1, i / width, i % width));
            if (x != 0.f && !labelled[static_cast<std::size_t>(c)])
                throw Error(fmt::format("{}: non-zero map for class {}, which the image is not labelled with "
                                        "(labels: {})",
                                        path.string(), c + 1, keys.empty() ? "none" : fmt::format("{}", fmt::join(keys, ","))));
        }
    torch::Tensor all = torch::from_blob(v.data(), {num_classes, height, width}, torch::kFloat32).clone();
    std::vector<int64_t> rows;
    for (int k : keys) rows.push_back(k - 1);
    return all.index_select(0, torch::tensor(rows, torch::kInt64));
}

std::vector<double> parse_thresholds(const std::string& text) {
    auto fail = [&] {
        return UsageError(fmt::format(
            "--thresholds: expected LO:HI:STEP or a comma list of numbers in (0, 1), got '{}'", text));
    };
    auto number = [&](const std::string& s) {
        try {
            std::size_t used = 0;
            double x = std::stod(s, &used);
            if (used != s.size() || !std::isfinite(x)) throw fail();
            return x;
        } catch (const std::logic_error&) {
            throw fail();
        }
    };
    std::vector<double> out;
    if (text.find(':') != std::string::npos) {
        std::size_t a = text.find(':'), b = text.find(':', a + 1);
        if (b == std::string::npos) throw fail();
        double lo = number(text.substr(0, a)), hi = number(text.substr(a + 1, b - a - 1)),
               step = number(text.substr(b + 1));
        if (step <= 0 || hi < lo) throw fail();
        for (int i = 0; lo + i * step <= hi + 1e-9; ++i) out.push_back(std::round((lo + i * step) * 1e9) / 1e9);
    } else {
        std::size_t start = 0;
        while (true) {
            std::size_t comma = text.find(',', start);
            out.push_back(number(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
            if (comma == std::string::npos) break;
            start = comma + 1;
        }
    }
    for (double t : out)
        if (!(t > 0 && t < 1)) throw fail();
    return out;
}

}  // namespace sightline
