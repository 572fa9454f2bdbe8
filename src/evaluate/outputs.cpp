// What sightline eval writes: the text table, metrics.json / .csv, confusion.csv and the heat map.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "sightline/evaluate.hpp"
#include "evaluate/output_fields.hpp"

namespace sightline {

namespace {

using nlohmann::json;

using output_fields::csv_field;
using output_fields::csv_number;
using output_fields::number;
std::string percent(double v) { return std::isnan(v) ? "-" : fmt::format("{:.2f}", 100.0 * v); }

json summary_json(const Metrics& m) {
    return json{{"miou", number(m.miou)},
                {"fg_miou", number(m.fg_miou)},
                {"mean_dice", number(m.mean_dice)},
                {"pixel_accuracy", number(m.pixel_accuracy)},
                {"mean_accuracy", number(m.mean_accuracy)},
                {"fw_iou", number(m.fw_iou)},
                {"pixels", m.pixels},
                {"ignored_pixels", m.ignored_pixels}};
}

}  // namespace

std::string format_metrics_table(const Metrics& m) {
    std::size_t width = 5;
    for (const ClassMetrics& c : m.per_class) width = std::max(width, c.name.size());
    std::string out = fmt::format("{:>3}  {:<{}} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>12} {:>12}\n",
                                  "id", "class", width, "IoU", "Dice", "Acc", "Prec", "FP/U",
                                  "FN/U", "GT px", "pred px");
    for (std::size_t i = 0; i < m.per_class.size(); ++i) {
        const ClassMetrics& c = m.per_class[i];
        out += fmt::format("{:>3}  {:<{}} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>12} {:>12}\n", i,
                           c.name, width, percent(c.iou), percent(c.dice), percent(c.accuracy),
                           percent(c.precision), percent(c.fp_ratio), percent(c.fn_ratio),
                           c.gt_pixels, c.pred_pixels);
    }
    int defined = 0;
    for (const ClassMetrics& c : m.per_class) defined += std::isnan(c.iou) ? 0 : 1;
    out += fmt::format("\nmIoU           {:>7}  (mean over {} of {} classes, background included; "
                       "classes absent from GT and prediction left out)\n",
                       percent(m.miou), defined, m.num_classes);
    out += fmt::format("fg mIoU        {:>7}  (classes 1..{})\n", percent(m.fg_miou), m.num_classes - 1);
    out += fmt::format("mean Dice      {:>7}\n", percent(m.mean_dice));
    out += fmt::format("pixel accuracy {:>7}\n", percent(m.pixel_accuracy));
    out += fmt::format("mean class acc {:>7}\n", percent(m.mean_accuracy));
    out += fmt::format("fw IoU         {:>7}\n", percent(m.fw_iou));
    out += fmt::format("pixels         {} labelled, {} ignored (values in %; FP/U, FN/U = fp, fn "
                       "over the union)\n",
                       m.pixels, m.ignored_pixels);
    return out;
}

cv::Mat render_confusion_heatmap(const ConfusionMatrix& cm, const std::vector<std::string>& names) {
    const int k = cm.num_classes();
    if (static_cast<int>(names.size()) != k)
        throw Error(fmt::format("{} class names for a {}-class confusion matrix", names.size(), k));
    // Predictions of the ignore value get their own last column when there are any, so that
    // every row adds up to 100 %.
    bool ignore_column = false;
    for (int i = 0; i < k; ++i) ignore_column |= cm.count(i, k) > 0;
    const int cols = k + (ignore_column ? 1 : 0);
    std::vector<std::string> col_names(names);
    if (ignore_column) col_names.push_back("(ignore)");

    const int cell = std::clamp(720 / cols, 6, 40);
    const int font = cv::FONT_HERSHEY_SIMPLEX;
    const double scale = std::clamp(cell / 34.0, 0.3, 0.5);
    const bool label_axes = cell >= 10;  // below that, names would overlap
    int label_w = 0, base = 0;
    if (label_axes)
        for (const std::string& s : col_names)
            label_w = std::max(label_w, cv::getTextSize(s, font, scale, 1, &base).width);
    const std::string title[2] = {"rows: ground truth, columns: prediction",
                                  "% of each row; grey: class absent from the ground truth"};
    int title_w = 0;
    for (const std::string& t : title) title_w = std::max(title_w, cv::getTextSize(t, font, 0.45, 1, &base).width);
    const int margin = label_w + 12, title_h = 44;
    const cv::Point origin(margin, title_h + margin);
    const int width = std::max(margin + cols * cell + 8, title_w + 12);
    cv::Mat canvas(origin.y + k * cell + 8, width, CV_8UC3, cv::Scalar(255, 255, 255));
    for (int t = 0; t < 2; ++t)
        cv::putText(canvas, title[t], {6, 18 + 18 * t}, font, 0.45, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);

    // Row shares through the viridis colour map.
    cv::Mat values(k, cols, CV_8UC1);
    std::vector<int64_t> rowsum(k, 0);
    for (int i = 0; i < k; ++i) {
        for (int j = 0; j <= k; ++j) rowsum[i] += cm.count(i, j);
        for (int j = 0; j < cols; ++j)
            values.at<uint8_t>(i, j) =
                rowsum[i] ? cv::saturate_cast<uint8_t>(255.0 * cm.count(i, j) / rowsum[i]) : 0;
    }
    cv::Mat colours;
    cv::applyColorMap(values, colours, cv::COLORMAP_VIRIDIS);  // BGR
    cv::cvtColor(colours, colours, cv::COLOR_BGR2RGB);
    for (int i = 0; i < k; ++i)
        for (int j = 0; j < cols; ++j) {
            cv::Rect r(origin.x + j * cell, origin.y + i * cell, cell, cell);
            cv::Vec3b c = rowsum[i] ? colours.at<cv::Vec3b>(i, j) : cv::Vec3b(200, 200, 200);
            cv::rectangle(canvas, r, cv::Scalar(c[0], c[1], c[2]), cv::FILLED);
            if (cell < 24 || !rowsum[i]) continue;
            double pct = 100.0 * cm.count(i, j) / rowsum[i];
            if (pct < 0.5) continue;
            std::string s = fmt::format("{:.0f}", pct);
            cv::Size ts = cv::getTextSize(s, font, scale * 0.85, 1, &base);
            cv::Scalar ink = values.at<uint8_t>(i, j) > 150 ? cv::Scalar(0, 0, 0) : cv::Scalar(255, 255, 255);
            cv::putText(canvas, s, {r.x + (cell - ts.width) / 2, r.y + (cell + ts.height) / 2}, font,
                        scale * 0.85, ink, 1, cv::LINE_AA);
        }
    if (!label_axes) return canvas;
    // Row labels right-aligned left of the grid; column labels drawn horizontally on a strip
    // that is then rotated, so they read bottom-to-top above their column.
    for (int i = 0; i < k; ++i) {
        cv::Size ts = cv::getTextSize(names[i], font, scale, 1, &base);
        cv::putText(canvas, names[i], {margin - 6 - ts.width, origin.y + i * cell + (cell + ts.height) / 2},
                    font, scale, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
    }
    cv::Mat strip(cell * cols, margin, CV_8UC3, cv::Scalar(255, 255, 255));
    for (int j = 0; j < cols; ++j) {
        cv::Size ts = cv::getTextSize(col_names[j], font, scale, 1, &base);
        cv::putText(strip, col_names[j], {6, j * cell + (cell + ts.height) / 2}, font, scale,
                    cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
    }
    cv::Mat rotated;
    cv::rotate(strip, rotated, cv::ROTATE_90_COUNTERCLOCKWISE);  // margin x (cell * cols)
    rotated.copyTo(canvas(cv::Rect(origin.x, title_h, cols * cell, margin)));
    return canvas;
}

void write_eval_outputs(const fs::path& dir, const EvalResult& r) {
    ensure_writable_dir(dir);
    const Metrics& m = r.metrics;
    const int k = m.num_classes;

    json doc = summary_json(m);
    doc["num_classes"] = k;
    doc["ignore"] = r.confusion.ignore();
    doc["images"] = r.ids.size();
    doc["skipped"] = r.skipped;
    doc["convention"] =
        "one confusion matrix over all images (PASCAL VOC); GT == ignore not counted; "
        "prediction == ignore counts as fn; IoU = tp/(tp+fp+fn); miou = nanmean over classes "
        "with background; fg_miou = nanmean over classes 1..K-1; null = class absent from GT "
        "and prediction";
    json per_class = json::array();
    for (int i = 0; i < k; ++i) {
        const ClassMetrics& c = m.per_class[i];
        per_class.push_back({{"id", i},
                             {"name", c.name},
                             {"iou", number(c.iou)},
                             {"dice", number(c.dice)},
                             {"accuracy", number(c.accuracy)},
                             {"precision", number(c.precision)},
                             {"fp_ratio", number(c.fp_ratio)},
                             {"fn_ratio", number(c.fn_ratio)},
                             {"tp", c.tp},
                             {"fp", c.fp},
                             {"fn", c.fn},
                             {"gt_pixels", c.gt_pixels},
                             {"pred_pixels", c.pred_pixels}});
    }
    doc["per_class"] = per_class;
    if (!r.per_image.empty()) {
        json images = json::array();
        for (const ImageResult& im : r.per_image) {
            json j = summary_json(im.metrics);
            j["id"] = im.id;
            images.push_back(j);
        }
        doc["per_image"] = images;
    }

    std::string csv = "id,name,iou,dice,accuracy,precision,fp_ratio,fn_ratio,tp,fp,fn,gt_pixels,pred_pixels\n";
    for (int i = 0; i < k; ++i) {
        const ClassMetrics& c = m.per_class[i];
        csv += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{}\n", i, csv_field(c.name),
                           csv_number(c.iou), csv_number(c.dice), csv_number(c.accuracy),
                           csv_number(c.precision), csv_number(c.fp_ratio), csv_number(c.fn_ratio),
                           c.tp, c.fp, c.fn, c.gt_pixels, c.pred_pixels);
    }

    std::string conf = "gt\\pred";
    for (const std::string& name : r.class_names) conf += "," + csv_field(name);
    conf += ",ignore\n";
    for (int i = 0; i < k; ++i) {
        conf += csv_field(r.class_names[i]);
        for (int j = 0; j <= k; ++j) conf += fmt::format(",{}", r.confusion.count(i, j));
        conf += "\n";
    }

    std::string per_image_csv;
    if (!r.per_image.empty()) {
        per_image_csv = "id,pixels,ignored_pixels,miou,fg_miou,pixel_accuracy";
        for (const std::string& name : r.class_names) per_image_csv += ",iou_" + csv_field(name);
        per_image_csv += "\n";
        for (const ImageResult& im : r.per_image) {
            const Metrics& pm = im.metrics;
            per_image_csv += fmt::format("{},{},{},{},{},{}", csv_field(im.id), pm.pixels,
                                         pm.ignored_pixels, csv_number(pm.miou),
                                         csv_number(pm.fg_miou), csv_number(pm.pixel_accuracy));
            for (const ClassMetrics& c : pm.per_class) per_image_csv += "," + csv_number(c.iou);
            per_image_csv += "\n";
        }
    }

    cv::Mat heat = render_confusion_heatmap(r.confusion, r.class_names);
    // Everything is computed before the first write: an error leaves no partial report.
    write_file_atomic(dir / "metrics.json", doc.dump(2) + "\n");
    write_file_atomic(dir / "metrics.csv", csv);
    write_file_atomic(dir / "confusion.csv", conf);
    if (!per_image_csv.empty()) write_file_atomic(dir / "per_image.csv", per_image_csv);
    write_image_rgb(dir / "confusion.png", heat);
}

}  // namespace sightline
