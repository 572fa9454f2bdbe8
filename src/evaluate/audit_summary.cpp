// The audit's aggregation per class and overall, and the verdict rule (sightline/audit.hpp).
#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "sightline/audit.hpp"
#include "evaluate/audit_values.hpp"

namespace sightline {

namespace {

using audit_detail::kNaN;

// Mean of the defined (non-NaN) values; NaN when there is none.
class Mean {
public:
    void add(double v) {
        if (std::isnan(v)) return;
        sum_ += v;
        ++n_;
    }
    double value() const { return n_ ? sum_ / double(n_) : kNaN; }

private:
    double sum_ = 0;
    std::size_t n_ = 0;
};

bool natural(const AuditRecord& r) { return r.version.empty() || r.version == "matched"; }

int version_rank(const std::string& v) {
    if (v == "matched") return 0;
    if (v == "swapped") return 1;
    if (v == "context") return 2;
    return 3;
}

std::string whole_percent(double v) { return std::isnan(v) ? "-" : fmt::format("{:.0f}%", 100 * v); }
std::string two_decimals(double v) { return std::isnan(v) ? "-" : fmt::format("{:.2f}", v); }

ClassAudit summarise(const std::vector<const AuditRecord*>& records, int class_id, const std::string& name,
                     const AuditThresholds& th) {
    ClassAudit c;
    c.class_id = class_id;
    c.name = name;
    // The verdict reads the natural images on which the object is visible.
    std::vector<const AuditRecord*> v;
    for (const AuditRecord* r : records)
        if (natural(*r) && r->object_area > 0) v.push_back(r);
    c.images = v.size();
    c.has_context = !v.empty() && std::all_of(v.begin(), v.end(), [](const AuditRecord* r) { return r->has_context; });

    // Masses and areas over the images whose map has positive mass (mass fractions defined),
    // so that numerator and denominator average over the same images.
    Mean a_obj, a_ctx, m_obj, m_ctx, m_else, a_out, m_out, point;
    Mean ou_obj, ou_ref, cu_obj, cu_ref;  // the ideal users' mass fractions (object, reference)
    std::vector<Mean> fixed(th.fixed.size()), grid(audit_grid(th).size());
    for (const AuditRecord* r : v) {
        if (r->total_mass > 0) {
            a_obj.add(r->object_area);
            m_obj.add(r->object_mass);
            m_else.add(r->elsewhere_mass);
            a_out.add(1.0 - r->object_area);
            m_out.add(1.0 - r->object_mass);
            if (c.has_context) {
                a_ctx.add(r->context_area);
                m_ctx.add(r->context_mass);
            }
            ou_obj.add(r->object_user.object);
            ou_ref.add(r->object_user.reference);
            cu_obj.add(r->context_user.object);
            cu_ref.add(r->context_user.reference);
        }
        for (std::size_t k = 0; k < fixed.size() && k < r->iou_fixed.size(); ++k) fixed[k].add(r->iou_fixed[k]);
        for (std::size_t k = 0; k < grid.size() && k < r->iou_grid.size(); ++k) grid[k].add(r->iou_grid[k]);
        if (r->pointing >= 0) point.add(r->pointing);
    }
    c.object_area = a_obj.value();
    c.object_mass = m_obj.value();
    c.elsewhere_mass = m_else.value();
    c.context_area = c.has_context ? a_ctx.value() : kNaN;
    c.context_mass = c.has_context ? m_ctx.value() : kNaN;
    c.object_concentration = c.object_mass / c.object_area;
    c.reference_concentration = c.has_context ? c.context_mass / c.context_area : m_out.value() / a_out.value();
    c.ratio = c.object_concentration / c.reference_concentration;
    const double a_ref = c.has_context ? a_ctx.value() : a_out.value();
    auto ideal_ratio = [&](const Mean& on_object, const Mean& on_reference) {
        const double r = (on_object.value() / c.object_area) / (on_reference.value() / a_ref);
        return std::isnan(r) ? r : std::clamp(r, 1.0 / kIdealRatioLimit, kIdealRatioLimit);
    };
    c.object_user_ratio = ideal_ratio(ou_obj, ou_ref);
    c.context_user_ratio = ideal_ratio(cu_obj, cu_ref);
    c.position = audit_position(c.ratio, c.context_user_ratio, c.object_user_ratio);
    c.verdict = audit_verdict(c.ratio, c.context_user_ratio, c.object_user_ratio);
    for (const Mean& m : fixed) c.iou_fixed.push_back(m.value());
    const std::vector<double> thresholds = audit_grid(th);
    c.best_threshold = kNaN;
    c.best_iou = kNaN;
    for (std::size_t k = 0; k < grid.size(); ++k) {
        double g = grid[k].value();
        if (!std::isnan(g) && (std::isnan(c.best_iou) || g > c.best_iou)) {
            c.best_iou = g;
            c.best_threshold = thresholds[k];
        }
    }
    c.pointing = point.value();
    const char* ref = c.has_context ? "context" : "outside the object";
    c.evidence = c.images == 0
                     ? "no natural image with the object visible"
                     : fmt::format("object holds {} of the mass on {} of the pixels (concentration {}), {} holds {} "
                                   "on {} (concentration {}); ratio {} over {} image(s), position {} between a pure context "
                                   "user's {} and a pure object user's {} at this map's resolution",
                                   whole_percent(c.object_mass), whole_percent(c.object_area),
                                   two_decimals(c.object_concentration), ref,
                                   whole_percent(c.has_context ? c.context_mass : 1.0 - c.object_mass),
                                   whole_percent(c.has_context ? c.context_area : 1.0 - c.object_area),
                                   two_decimals(c.reference_concentration), two_decimals(c.ratio), c.images,
                                   two_decimals(c.position), two_decimals(c.context_user_ratio),
                                   two_decimals(c.object_user_ratio));

    // Behaviour per version.
    std::vector<std::string> versions;
    for (const AuditRecord* r : records)
        if (std::find(versions.begin(), versions.end(), r->version) == versions.end()) versions.push_back(r->version);
    std::sort(versions.begin(), versions.end(),
              [](const std::string& a, const std::string& b) { return version_rank(a) < version_rank(b); });
    for (const std::string& ver : versions) {
        VersionBehaviour b;
        b.version = ver;
        Mean om, cm;
        for (const AuditRecord* r : records) {
            if (r->version != ver) continue;
            ++b.images;
            b.correct += r->correct ? 1 : 0;
            om.add(r->object_area > 0 ? r->object_mass : kNaN);
            cm.add(r->context_mass);
        }
        b.accuracy = double(b.correct) / double(b.images);
        b.object_mass = om.value();
        b.context_mass = cm.value();
        c.behaviour.push_back(b);
    }
    return c;
}

}  // namespace

double audit_position(double ratio, double context_user_ratio, double object_user_ratio) {
    const double lo = std::clamp(context_user_ratio, 1.0 / kIdealRatioLimit, kIdealRatioLimit);
    const double hi = std::clamp(object_user_ratio, 1.0 / kIdealRatioLimit, kIdealRatioLimit);
    if (std::isnan(ratio) || std::isnan(lo) || std::isnan(hi) || !(hi > lo)) return kNaN;
    if (ratio <= 0) return -std::numeric_limits<double>::infinity();  // no mass on the object at all
    return std::log(ratio / lo) / std::log(hi / lo);  // +inf for a map with nothing on the reference
}

std::string audit_verdict(double ratio, double context_user_ratio, double object_user_ratio) {
    const double p = audit_position(ratio, context_user_ratio, object_user_ratio);
    if (std::isnan(p)) return "undetermined";
    if (p >= kUsesObjectPosition) return "uses the object";
    if (p <= kUsesContextPosition) return "uses context";
    return "mixed";
}

AuditSummary summarise_audit(const std::vector<AuditRecord>& records, const std::vector<std::string>& class_names,
                             const AuditThresholds& th) {
    AuditSummary s;
    std::vector<const AuditRecord*> all;
    for (const AuditRecord& r : records) all.push_back(&r);
    for (std::size_t c = 1; c < class_names.size(); ++c) {
        std::vector<const AuditRecord*> mine;
        for (const AuditRecord& r : records)
            if (r.class_id == static_cast<int>(c)) mine.push_back(&r);
        if (!mine.empty()) s.classes.push_back(summarise(mine, static_cast<int>(c), class_names[c], th));
    }
    s.overall = summarise(all, 0, "all", th);
    return s;
}

}  // namespace sightline
