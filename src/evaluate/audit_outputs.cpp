// What sightline audit writes: the text table, audit.json, audit.csv and audit_records.csv.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "sightline/audit.hpp"
#include "evaluate/output_fields.hpp"

namespace sightline {

namespace {

using nlohmann::json;

using output_fields::csv_field;
using output_fields::csv_number;
using output_fields::number;
std::string pct(double v) { return std::isnan(v) ? "-" : fmt::format("{:.1f}", 100 * v); }
std::string num(double v) {
    if (std::isnan(v)) return "-";
    if (std::isinf(v)) return "inf";
    return fmt::format("{:.2f}", v);
}
std::string version_label(const std::string& v) { return v.empty() ? "all images" : v; }

const char* kRule =
    "ratio r = (object mass share / object area share) / (context mass share / context area share), "
    "context = the context mask, or everything outside the object without one; averaged over the "
    "natural images (matched version) with the object visible. The same ratio is measured for two "
    "ideal users at the map's resolution (the object mask, or the context mask, area-averaged onto "
    "the map's grid and upsampled back): r_context and r_object. position p = log(r / r_context) / "
    "log(r_object / r_context); p >= 0.6: uses the object; p <= 0.4: uses context; otherwise mixed.";
const char* kNotAScore =
    "IoU of a faithful explanation with the object mask measures the model (what it uses), not the "
    "explanation method.";

json class_json(const ClassAudit& c, const AuditThresholds& th) {
    json iou = json::array();
    for (std::size_t k = 0; k < c.iou_fixed.size(); ++k)
        iou.push_back({{"threshold", th.fixed[k]}, {"iou", number(c.iou_fixed[k])}});
    json behaviour = json::array();
    for (const VersionBehaviour& b : c.behaviour)
        behaviour.push_back({{"version", b.version},
                             {"images", b.images},
                             {"correct", b.correct},
                             {"accuracy", number(b.accuracy)},
                             {"object_mass", number(b.object_mass)},
                             {"context_mass", number(b.context_mass)}});
    return {{"class_id", c.class_id},
            {"name", c.name},
            {"images", c.images},
            {"reference", c.has_context ? "context" : "outside the object"},
            {"object_area", number(c.object_area)},
            {"context_area", number(c.context_area)},
            {"object_mass", number(c.object_mass)},
            {"context_mass", number(c.context_mass)},
            {"elsewhere_mass", number(c.elsewhere_mass)},
            {"object_concentration", number(c.object_concentration)},
            {"reference_concentration", number(c.reference_concentration)},
            {"ratio", std::isinf(c.ratio) ? json("inf") : number(c.ratio)},
            {"context_user_ratio", number(c.context_user_ratio)},
            {"object_user_ratio", number(c.object_user_ratio)},
            {"position", std::isinf(c.position) ? json(c.position > 0 ? "inf" : "-inf") : number(c.position)},
            {"iou", iou},
            {"best_threshold", number(c.best_threshold)},
            {"best_iou", number(c.best_iou)},
            {"pointing_game", number(c.pointing)},
            {"verdict", c.verdict},
            {"evidence", c.evidence},
            {"behaviour", behaviour}};
}

json preprocessing_json(const AuditPreprocessing& p) {
    json size = nullptr;
    if (p.height > 0) size = {p.height, p.width};
    return {{"mean", p.mean}, {"std", p.std}, {"size", size}, {"source", p.source}, {"size_source", p.size_source}};
}

json record_json(const AuditRecord& r, const std::vector<std::string>& names) {
    json iou = json::array(), grid = json::array();
    for (double v : r.iou_fixed) iou.push_back(number(v));
    for (double v : r.iou_grid) grid.push_back(number(v));
    return {{"id", r.id},
            {"version", r.version},
            {"class_id", r.class_id},
            {"class", names.at(static_cast<std::size_t>(r.class_id))},
            {"explained_class", names.at(static_cast<std::size_t>(r.explained_id > 0 ? r.explained_id : r.class_id))},
            {"correct", r.correct},
            {"probability", number(r.probability)},
            {"total_mass", number(r.total_mass)},
            {"object_area", number(r.object_area)},
            {"context_area", number(r.context_area)},
            {"elsewhere_area", number(r.elsewhere_area)},
            {"object_mass", number(r.object_mass)},
            {"context_mass", number(r.context_mass)},
            {"elsewhere_mass", number(r.elsewhere_mass)},
            {"object_user_masses", {number(r.object_user.object), number(r.object_user.reference)}},
            {"context_user_masses", {number(r.context_user.object), number(r.context_user.reference)}},
            {"iou", iou},
            {"iou_grid", grid},
            {"pointing", r.pointing < 0 ? json(nullptr) : json(r.pointing == 1)}};
}

}  // namespace

std::string format_audit_table(const AuditResult& r) {
    std::string out;
    if (!r.trustworthy)
        out += fmt::format("NOT TRUSTWORTHY: {} has no faithfulness guarantee for this model ({}). The numbers "
                           "below describe the map, not necessarily what the model used.\n\n",
                           r.method, r.guarantee);
    else
        out += fmt::format("{} on this model: {}\n\n", r.method, r.guarantee);
    std::size_t width = 5;
    for (const ClassAudit& c : r.summary.classes) width = std::max(width, c.name.size());
    std::string iou_head;
    for (double t : r.thresholds.fixed) iou_head += fmt::format(" {:>7}", fmt::format("IoU@{:g}", t));
    out += fmt::format("{:<{}} {:>6} {:>7} {:>7} {:>6} {:>7} {:>7} {:>6} {:>6} {:>13} {:>5}{} {:>12} {:>6}  {}\n",
                       "class", width, "images", "obj m%", "obj a%", "C_obj", "ctx m%", "ctx a%", "C_ref", "ratio",
                       "ideal ctx/obj", "pos", iou_head, "best IoU (t)", "point", "verdict");
    auto row = [&](const ClassAudit& c) {
        std::string ious;
        for (double v : c.iou_fixed) ious += fmt::format(" {:>7}", pct(v));
        std::string best = std::isnan(c.best_iou) ? "-" : fmt::format("{} ({:g})", pct(c.best_iou), c.best_threshold);
        const std::string ideal = fmt::format("{}/{}", num(c.context_user_ratio), num(c.object_user_ratio));
        out += fmt::format("{:<{}} {:>6} {:>7} {:>7} {:>6} {:>7} {:>7} {:>6} {:>6} {:>13} {:>5}{} {:>12} {:>6}  {}\n",
                           c.name, width, c.images, pct(c.object_mass), pct(c.object_area),
                           num(c.object_concentration), pct(c.context_mass), pct(c.context_area),
                           num(c.reference_concentration), num(c.ratio), ideal, num(c.position), ious, best,
                           pct(c.pointing), c.verdict);
    };
    for (const ClassAudit& c : r.summary.classes) row(c);
    row(r.summary.overall);
    out += fmt::format("(m% = share of the positive map mass, a% = share of the pixels, C = m/a; C_ref is the {}; "
                       "ratio = C_obj/C_ref; ideal ctx/obj = the ratio of a pure context / object user's map at "
                       "this map's resolution; pos = where the ratio lies between them on a log scale, 0 to 1; "
                       "verdict: pos >= 0.6 uses the object, <= 0.4 uses context, else mixed)\n",
                       r.summary.overall.has_context ? "context's" : "outside of the object's");

    // Behaviour next to the context mass, per version.
    const auto& versions = r.summary.overall.behaviour;
    if (!versions.empty()) {
        out += fmt::format("\n{:<{}}", "accuracy", width);
        for (const VersionBehaviour& b : versions) out += fmt::format(" {:>24}", version_label(b.version) + " (ctx m%)");
        out += "\n";
        auto brow = [&](const ClassAudit& c) {
            out += fmt::format("{:<{}}", c.name, width);
            for (const VersionBehaviour& v : versions) {
                auto it = std::find_if(c.behaviour.begin(), c.behaviour.end(),
                                       [&](const VersionBehaviour& b) { return b.version == v.version; });
                out += it == c.behaviour.end()
                           ? fmt::format(" {:>24}", "-")
                           : fmt::format(" {:>24}", fmt::format("{:.3f} ({})", it->accuracy, pct(it->context_mass)));
            }
            out += "\n";
        };
        for (const ClassAudit& c : r.summary.classes) brow(c);
        brow(r.summary.overall);
    }
    out += fmt::format("\n{} images of split{} {}, {} explained (image, class) pairs, target: {}", r.images,
                       r.splits.size() == 1 ? "" : "s", fmt::join(r.splits, ", "), r.records.size(),
                       r.target == "predicted" ? "predicted (the top-1 class's map)" : "label (the labelled class's map)");
    if (r.unlabelled) out += fmt::format(", {} images without a label skipped", r.unlabelled);
    out += "\n";
    return out;
}

nlohmann::json audit_json(const AuditResult& r) {
    json classes = json::array();
    for (const ClassAudit& c : r.summary.classes) classes.push_back(class_json(c, r.thresholds));
    json records = json::array();
    for (const AuditRecord& rec : r.records) records.push_back(record_json(rec, r.class_names));
    json j = {{"model", r.model},
              {"layer", r.layer},
              {"method", r.method},
              {"data", r.data},
              {"splits", r.splits},
              {"target", r.target},
              {"preprocessing", preprocessing_json(r.preprocessing)},
              {"head", r.head},
              {"trustworthy", r.trustworthy},
              {"guarantee", r.guarantee},
              {"note", kNotAScore},
              {"rule", kRule},
              {"thresholds",
               {{"fixed", r.thresholds.fixed},
                {"grid", audit_grid(r.thresholds)},
                {"pointing_tolerance", r.thresholds.pointing_tolerance}}},
              {"images", r.images},
              {"unlabelled", r.unlabelled},
              {"classes", classes},
              {"overall", class_json(r.summary.overall, r.thresholds)},
              {"records", records}};
    if (r.shard.count > 1)
        j["shard"] = {{"index", r.shard.index},
                      {"count", r.shard.count},
                      {"batch", r.shard.batch},
                      {"batch_files", r.shard.batch_files},
                      {"split_images", r.shard.split_images},
                      {"class_names", r.class_names},
                      {"grid_steps", r.thresholds.grid_steps},
                      {"preprocessing_note", r.preprocessing.note}};
    return j;
}

void write_audit_outputs(const fs::path& dir, const AuditResult& r) {
    ensure_writable_dir(dir);
    const json j = audit_json(r);

    // audit.csv: one row per class and "all"; behaviour columns for the versions present.
    std::string csv = "class_id,class,images,object_area,context_area,object_mass,context_mass,elsewhere_mass,"
                      "object_concentration,reference_concentration,ratio,context_user_ratio,object_user_ratio,"
                      "position";
    for (double t : r.thresholds.fixed) csv += fmt::format(",iou@{:g}", t);
    csv += ",best_threshold,best_iou,pointing_game,verdict";
    const auto& versions = r.summary.overall.behaviour;
    for (const VersionBehaviour& v : versions) {
        std::string p = v.version.empty() ? "all" : v.version;
        csv += fmt::format(",{0}_images,{0}_accuracy,{0}_object_mass,{0}_context_mass", p);
    }
    csv += "\n";
    auto crow = [&](const ClassAudit& c) {
        csv += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{}", c.class_id, csv_field(c.name), c.images,
                           csv_number(c.object_area), csv_number(c.context_area), csv_number(c.object_mass),
                           csv_number(c.context_mass), csv_number(c.elsewhere_mass),
                           csv_number(c.object_concentration), csv_number(c.reference_concentration),
                           csv_number(c.ratio), csv_number(c.context_user_ratio), csv_number(c.object_user_ratio),
                           csv_number(c.position));
        for (double v : c.iou_fixed) csv += "," + csv_number(v);
        csv += fmt::format(",{},{},{},{}", csv_number(c.best_threshold), csv_number(c.best_iou),
                           csv_number(c.pointing), csv_field(c.verdict));
        for (const VersionBehaviour& v : versions) {
            auto it = std::find_if(c.behaviour.begin(), c.behaviour.end(),
                                   [&](const VersionBehaviour& b) { return b.version == v.version; });
            if (it == c.behaviour.end()) csv += ",0,nan,nan,nan";
            else
                csv += fmt::format(",{},{},{},{}", it->images, csv_number(it->accuracy), csv_number(it->object_mass),
                                   csv_number(it->context_mass));
        }
        csv += "\n";
    };
    for (const ClassAudit& c : r.summary.classes) crow(c);
    crow(r.summary.overall);

    std::string rec_csv = "id,version,class_id,class,correct,probability,total_mass,object_area,context_area,"
                          "elsewhere_area,object_mass,context_mass,elsewhere_mass";
    for (double t : r.thresholds.fixed) rec_csv += fmt::format(",iou@{:g}", t);
    rec_csv += ",pointing\n";
    for (const AuditRecord& x : r.records) {
        rec_csv += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{}", csv_field(x.id), x.version, x.class_id,
                               csv_field(r.class_names.at(static_cast<std::size_t>(x.class_id))), x.correct ? 1 : 0,
                               csv_number(x.probability), csv_number(x.total_mass), csv_number(x.object_area),
                               csv_number(x.context_area), csv_number(x.elsewhere_area), csv_number(x.object_mass),
                               csv_number(x.context_mass), csv_number(x.elsewhere_mass));
        for (double v : x.iou_fixed) rec_csv += "," + csv_number(v);
        rec_csv += x.pointing < 0 ? ",nan\n" : fmt::format(",{}\n", x.pointing);
    }
    // Everything is formatted before the first file is written.
    write_file_atomic(dir / "audit.json", j.dump(1));
    write_file_atomic(dir / "audit.csv", csv);
    write_file_atomic(dir / "audit_records.csv", rec_csv);
}

}  // namespace sightline
