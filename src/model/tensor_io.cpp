// Images and .npy files <-> tensors.
#include <cstring>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <opencv2/imgproc.hpp>

#include "sightline/tensor_io.hpp"

namespace sightline {

torch::Tensor image_to_tensor(const cv::Mat& rgb, const Preprocess& pre) {
    cv::Mat resized = rgb;
    if (pre.height > 0 && pre.width > 0 && (rgb.rows != pre.height || rgb.cols != pre.width))
        cv::resize(rgb, resized, cv::Size(pre.width, pre.height), 0, 0, cv::INTER_LINEAR);
    cv::Mat f;
    resized.convertTo(f, CV_32FC3, 1.0 / 255.0);
    torch::Tensor t = torch::from_blob(f.data, {f.rows, f.cols, 3}, torch::kFloat32).clone();
    t = t.permute({2, 0, 1});
    torch::Tensor mean = torch::tensor({pre.mean[0], pre.mean[1], pre.mean[2]}).view({3, 1, 1});
    torch::Tensor std = torch::tensor({pre.std[0], pre.std[1], pre.std[2]}).view({3, 1, 1});
    return ((t - mean) / std).unsqueeze(0).contiguous();
}

torch::Tensor npy_to_tensor(const NpyArray& a) {
    std::vector<float> values = a.to_float();
    return torch::from_blob(values.data(), a.shape, torch::kFloat32).clone();
}

NpyArray tensor_to_npy(const torch::Tensor& t) {
    torch::Tensor c = t.detach().to(torch::kFloat32).contiguous();
    NpyArray a;
    a.dtype = "f4";
    a.shape.assign(c.sizes().begin(), c.sizes().end());
    a.bytes.resize(c.numel() * 4);
    std::memcpy(a.bytes.data(), c.data_ptr<float>(), a.bytes.size());
    return a;
}

cv::Mat tensor_picture(const torch::Tensor& x) {
    torch::Tensor t = x[0];
    torch::Tensor lo = t.amin({1, 2}, true), hi = t.amax({1, 2}, true);
    t = ((t - lo) / (hi - lo + 1e-12) * 255).clamp(0, 255).to(torch::kUInt8).permute({1, 2, 0}).contiguous();
    return cv::Mat(static_cast<int>(t.size(0)), static_cast<int>(t.size(1)), CV_8UC3, t.data_ptr()).clone();
}

std::vector<InputItem> read_inputs_of_one_size(const std::vector<fs::path>& paths, const Preprocess& pre) {
    std::vector<InputItem> items;
    for (const auto& p : paths) items.push_back(read_input(p, pre));
    for (const auto& item : items)
        if (item.tensor.sizes() != items.front().tensor.sizes())
            throw Error(fmt::format("{}: input is {}x{} but {} is {}x{}; give --size", item.path.string(),
                                    item.tensor.size(2), item.tensor.size(3), items.front().path.string(),
                                    items.front().tensor.size(2), items.front().tensor.size(3)));
    return items;
}

InputItem read_input(const fs::path& path, const Preprocess& pre) {
    InputItem item;
    item.path = path;
    if (path.extension() == ".npy") {
        NpyArray a = read_npy(path);
        if (a.dtype != "f4")
            throw Error(fmt::format("{}: input .npy has dtype {}; expected float32", path.string(), a.dtype));
        bool ok = (a.shape.size() == 3 && a.shape[0] == 3) || (a.shape.size() == 4 && a.shape[0] == 1 && a.shape[1] == 3);
        if (!ok)
            throw Error(fmt::format("{}: input .npy has shape [{}]; expected [3,H,W] or [1,3,H,W]",
                                    path.string(), fmt::join(a.shape, ",")));
        if (a.numel() == 0)
            throw Error(fmt::format("{}: input .npy has shape [{}]: an image needs at least one pixel",
                                    path.string(), fmt::join(a.shape, ",")));
        item.tensor = npy_to_tensor(a);
        if (item.tensor.dim() == 3) item.tensor = item.tensor.unsqueeze(0);
        if (!torch::isfinite(item.tensor).all().item<bool>())
            throw Error(fmt::format("{}: input tensor contains NaN or Inf", path.string()));
        item.display = tensor_picture(item.tensor);
        return item;
    }
    LoadedImage image = read_image_rgb(path);
    if (image.source_channels == 1) item.note = "grey image converted to RGB";
    if (image.source_channels == 4) item.note = "alpha channel dropped (RGBA converted to RGB)";
    item.tensor = image_to_tensor(image.rgb, pre);
    if (pre.height > 0 && pre.width > 0 && (image.rgb.rows != pre.height || image.rgb.cols != pre.width))
        cv::resize(image.rgb, item.display, cv::Size(pre.width, pre.height), 0, 0, cv::INTER_LINEAR);
    else
        item.display = image.rgb;
    return item;
}

}  // namespace sightline
