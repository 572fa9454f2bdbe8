// Guided Backprop (Springenberg et al. 2015): through every ReLU the gradient passes only
// where both the input and the incoming gradient are positive. Implemented by rewriting the
// model's inlined forward graph so each aten::relu / relu_ calls sightline::guided_relu.
// Known to fail the model-randomisation sanity check (Adebayo et al. 2018).
#include <torch/csrc/jit/ir/ir.h>
#include <torch/library.h>

#include "explain/context.hpp"
#include "explain/rules.hpp"

namespace sightline::detail {

namespace {

class GuidedRelu : public torch::autograd::Function<GuidedRelu> {
public:
    static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x) {
        ctx->save_for_backward({x});
        return torch::relu(x);
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grad_out) {
        torch::Tensor x = ctx->get_saved_variables()[0];
        torch::Tensor g = grad_out[0];
        return {g * ((x > 0) & (g > 0)).to(g.scalar_type())};
    }
};

torch::Tensor guided_relu(const torch::Tensor& x) { return GuidedRelu::apply(x); }

void replace_relus(torch::jit::Block* block) {
    static const c10::Symbol kGuided = c10::Symbol::fromQualString("sightline::guided_relu");
    for (auto it = block->nodes().begin(); it != block->nodes().end();) {
        torch::jit::Node* n = *it++;
        for (torch::jit::Block* inner : n->blocks()) replace_relus(inner);
        if (n->kind() != c10::aten::relu && n->kind() != c10::aten::relu_) continue;
        torch::jit::Node* guided = block->owningGraph()->create(kGuided, {n->input(0)});
        guided->insertBefore(n);
        guided->output()->setType(n->output()->type());
        n->output()->replaceAllUsesWith(guided->output());
        // An in-place ReLU also changed its input; later readers of the input see the result.
        if (n->kind() == c10::aten::relu_) n->input(0)->replaceAllUsesAfterNodeWith(guided, guided->output());
        n->destroy();
    }
}

}  // namespace

torch::Tensor guided_logits(MethodContext& c, const torch::Tensor& x) {
    if (!c.guided_forward) {
        auto graph = c.model.inlined_forward_graph();
        replace_relus(graph->block());
        c.guided_forward = std::make_shared<torch::jit::GraphFunction>(
            c10::QualifiedName("sightline.guided_forward"), graph, nullptr);
    }
    torch::jit::Stack stack{c.model.module()._ivalue(), x};
    c.guided_forward->run(stack);
    return stack.back().toTensor();
}

torch::Tensor guided_backprop(MethodContext& c) {
    return input_gradients(c, c.input_rows(), c.target_rows(), true).abs().amax(1);
}

// Guided Grad-CAM: guided backprop times the upsampled, normalised Grad-CAM map.
torch::Tensor guided_grad_cam(MethodContext& c) {
    torch::Tensor gb = guided_backprop(c);
    torch::Tensor gc = normalise_maps(grad_cam(c), gb.size(1), gb.size(2));
    return gb * gc;
}

}  // namespace sightline::detail

TORCH_LIBRARY(sightline, m) {
    m.def("guided_relu(Tensor x) -> Tensor", &sightline::detail::guided_relu);
}
