// Demo step 4: the audit. A faithful map (HiResCAM on these linear heads) shows what the model
// used, so its mass on the object versus the context measures the model — and must agree with
// the model's behaviour on the swapped-context and context-only scenes.
#include <fmt/format.h>

#include "demo.hpp"
#include "sightline/audit.hpp"

namespace sightline::cli::demo {

namespace {

json class_json(const ClassAudit& c) {
    json behaviour = json::object();
    for (const auto& v : c.behaviour)
        if (!v.version.empty()) behaviour[v.version] = {{"accuracy", v.accuracy}, {"images", v.images},
                                                         {"context_mass", v.context_mass},
                                                         {"object_mass", v.object_mass}};
    return {{"name", c.name},
            {"images", c.images},
            {"object_area", c.object_area},
            {"object_mass", c.object_mass},
            {"context_mass", c.context_mass},
            {"object_concentration", c.object_concentration},
            {"reference_concentration", c.reference_concentration},
            {"ratio", c.ratio},
            {"context_user_ratio", c.context_user_ratio},
            {"object_user_ratio", c.object_user_ratio},
            {"position", c.position},
            {"verdict", c.verdict},
            {"evidence", c.evidence},
            {"behaviour", behaviour}};
}

}  // namespace

json audit_models(const Context& c, const json& classifiers) {
    json models = json::array();
    for (const auto& m : classifiers["models"]) {
        const std::string name = m["name"];
        AuditOptions o;
        o.model = c.out / m["model"].get<std::string>();
        o.data = c.scenes();
        o.method = "hirescam";
        o.resume_dir = c.out / "audit" / name / ".resume";
        AuditResult r = audit_model(o);
        write_audit_outputs(c.out / "audit" / name, r);
        json classes = json::array();
        for (const auto& k : r.summary.classes) classes.push_back(class_json(k));
        models.push_back(json{{"name", name},
                          {"method", r.method},
                          {"trustworthy", r.trustworthy},
                          {"guarantee", r.guarantee},
                          {"images", r.images},
                          {"overall", class_json(r.summary.overall)},
                          {"classes", classes},
                          {"files", report_path(c.out / "audit" / name / "audit.json", c.out)}});
    }
    return {{"models", models}};
}

}  // namespace sightline::cli::demo
