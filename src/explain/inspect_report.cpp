// The JSON of `sightline inspect --json` (and of the Python module's inspect()).
#include "sightline/inspect.hpp"

namespace sightline {

nlohmann::json head_analysis_json(const HeadAnalysis& head) {
    return {{"kind", to_string(head.kind)},
            {"description", head.description},
            {"ops", head.ops},
            {"completeness_residual", head.completeness_residual},
            {"gradient_constant_in_activations", head.gradient_constant_in_a},
            {"gradient_spatially_uniform", head.gradient_spatially_uniform},
            {"guarantees", head.guarantees}};
}

nlohmann::json inspect_json(const Classifier& model, const std::string& model_name, const torch::Tensor& x,
                            const HeadAnalysis& head, const ModelInput& input) {
    nlohmann::json methods = nlohmann::json::object();
    for (const auto& m : explanation_methods()) {
        GuaranteeStatus s = guarantee_status(m, head);
        methods[m.key] = {{"holds", s.holds}, {"statement", s.statement}};
    }
    const torch::Tensor a = model.features(x).activations;
    return {{"model", model_name},
            {"layer", model.layer()},
            {"split", model.split_description()},
            {"activation_shape", a.sizes().vec()},
            {"input_shape", x.sizes().vec()},
            {"preprocessing", input.to_json()},
            {"head", head_analysis_json(head)},
            {"methods", methods}};
}

}  // namespace sightline
