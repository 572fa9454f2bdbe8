// Explains one image with Grad-CAM through the installed library's public API and compares
// the map with a reference map. Usage: explain_one MODEL.pt LAYER INPUT.npy REFERENCE.npy
// (INPUT [N,3,H,W] float32, image 0 is explained; REFERENCE [N,H,W]). Prints the class and the
// largest difference; exit code 1 when it exceeds 1e-4.
#include <cstdio>
#include <exception>

#include <sightline/explain.hpp>
#include <sightline/tensor_io.hpp>

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: explain_one MODEL.pt LAYER INPUT.npy REFERENCE.npy\n");
        return 2;
    }
    try {
        using namespace sightline;
        torch::Tensor x = npy_to_tensor(read_npy(argv[3])).slice(0, 0, 1);
        Classifier model = Classifier::load(argv[1]);
        model.set_layer(argv[2], x);
        Explainer explainer(model);
        Explanation ex = explainer.explain(x, parse_target("top1", {}), {"gradcam"});
        torch::Tensor map = ex.methods[0].maps[0][0];
        torch::Tensor reference = npy_to_tensor(read_npy(argv[4]))[0];
        const double diff = (map - reference).abs().max().item<double>();
        std::printf("class %lld, map %lldx%lld, max |map - reference| = %.3g\n",
                    static_cast<long long>(ex.targets[0][0].item<int64_t>()), static_cast<long long>(map.size(0)),
                    static_cast<long long>(map.size(1)), diff);
        return diff <= 1e-4 ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "explain_one: %s\n", e.what());
        return 1;
    }
}
