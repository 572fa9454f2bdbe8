// Hand-written k-row backward for heads that are a chain of simple operations (chain_head.hpp).
#include "explain/chain_head.hpp"

#include <functional>
#include <unordered_map>

#include <torch/csrc/jit/ir/constants.h>
#include <torch/torch.h>

namespace sightline::detail {

namespace {

namespace jit = torch::jit;

bool is_shape_query(const jit::Node* n) {
    return n->kind() == c10::aten::size || n->kind() == c10::aten::dim;
}

// Every tensor op the chain understands, by its unqualified name.
std::optional<int> step_kind(const jit::Node* n) {
    static const std::unordered_map<std::string, int> kinds = {
        {"linear", 2},          {"relu", 3},           {"relu_", 3},        {"hardtanh", 4},
        {"hardtanh_", 4},       {"dropout", 0},        {"dropout_", 0},     {"feature_dropout", 0},
        {"feature_dropout_", 0}, {"clone", 0},         {"contiguous", 0},   {"flatten", 1},
        {"view", 1},            {"reshape", 1},        {"adaptive_avg_pool2d", 5}, {"mean", 6}};
    if (n->kind().ns() != c10::namespaces::aten) return std::nullopt;
    auto it = kinds.find(n->kind().toUnqualString());
    if (it == kinds.end()) return std::nullopt;
    if (it->second == 6 && n->inputs().size() < 3) return std::nullopt;  // mean over every dim, batch included
    return it->second;
}

// Nodes of a block, nested blocks included.
void for_each_node(const jit::Block* block, const std::function<void(const jit::Node*)>& visit) {
    for (const jit::Node* n : block->nodes()) {
        visit(n);
        for (const jit::Block* b : n->blocks()) for_each_node(b, visit);
    }
}

// A scripted model's shape assertion: `if cond: ... else: raise`, with no outputs.
bool is_assertion(const jit::Node* n) { return n->kind() == c10::prim::If && n->outputs().empty(); }

bool raises(const jit::Block* block) {
    bool found = false;
    for_each_node(block, [&](const jit::Node* n) { found = found || n->kind() == c10::prim::RaiseException; });
    return found;
}

bool is_dropout(const jit::Node* n) {
    const std::string name = n->kind().toUnqualString();
    return name.find("dropout") != std::string::npos;
}

// g [..., out] times the weight [out, in] of a Linear, for `rows` gradient rows.
torch::Tensor linear_backward(const torch::Tensor& g, const torch::Tensor& weight, int64_t rows) {
    // One row: the transposed matrix-vector product streams the weight once (see forward()).
    if (g.dim() == 3 && rows == 1) return torch::mv(weight.t(), g.view({-1})).view({1, 1, -1});
    // A few rows through a large weight (VGG-16's 4096 x 25088): bands of 16 weight rows keep
    // the partial products in cache while the weight streams by; OpenBLAS's skinny product
    // re-reads more (five rows: 44 against 52 ms, Debian's python3-torch, 2 threads).
    constexpr int64_t kBand = 16;
    if (rows > 1 && rows <= 8 && weight.numel() >= (int64_t{1} << 22)) {
        const int64_t out = weight.size(0);
        torch::Tensor flat = g.reshape({-1, out});
        torch::Tensor result = torch::zeros({flat.size(0), weight.size(1)}, g.options());
        for (int64_t start = 0; start < out; start += kBand) {
            const int64_t len = std::min(kBand, out - start);
            result.addmm_(flat.narrow(1, start, len), weight.narrow(0, start, len));
        }
        std::vector<int64_t> shape = g.sizes().vec();
        shape.back() = weight.size(1);
        return result.view(shape);
    }
    return g.matmul(weight);
}

}  // namespace

std::shared_ptr<ChainHead> ChainHead::compile(std::shared_ptr<jit::Graph> graph, c10::IValue self) {
    if (!graph || graph->inputs().size() != 2 || graph->outputs().size() != 1) return nullptr;
    auto chain = std::make_shared<ChainHead>();
    jit::Value* current = graph->inputs()[1];
    std::vector<jit::Value*> past{current};
    auto on_chain = [&](const jit::Value* v) { return std::find(past.begin(), past.end(), v) != past.end(); };
    for (jit::Node* n : graph->nodes()) {
        if (!n->blocks().empty()) {
            // Branches and loops that compute values are left to autograd; assertions on
            // shapes (no outputs, no tensor of the chain inside) are kept and checked.
            if (!is_assertion(n) || on_chain(n->input(0))) return nullptr;
            bool touches = false;
            for (const jit::Block* b : n->blocks())
                for_each_node(b, [&](const jit::Node* inner) {
                    for (const jit::Value* v : inner->inputs()) touches = touches || on_chain(v);
                });
            if (touches) return nullptr;
            continue;
        }
        int uses = 0;
        for (const jit::Value* v : n->inputs()) uses += on_chain(v) ? 1 : 0;
        if (uses == 0 || is_shape_query(n)) continue;  // weights, constants, shapes
        std::optional<int> kind = step_kind(n);
        if (!kind || uses != 1 || n->inputs()[0] != current || n->outputs().size() != 1) return nullptr;
        chain->steps_.push_back({n, static_cast<Kind>(*kind), {}, {}, {}, false});
        current = n->output();
        past.push_back(current);
    }
    if (graph->outputs()[0] != current || chain->steps_.empty()) return nullptr;
    chain->graph_ = std::move(graph);
    chain->self_ = std::move(self);
    return chain;
}

torch::Tensor ChainHead::forward(const torch::Tensor& a) {
    torch::NoGradGuard no_grad;
    std::unordered_map<const jit::Value*, c10::IValue> values;
    values[graph_->inputs()[0]] = self_;
    values[graph_->inputs()[1]] = a;
    std::unordered_map<const jit::Node*, Step*> step_of;
    for (Step& s : steps_) step_of[s.node] = &s;
    try {
        for (jit::Node* n : graph_->nodes()) {
            if (n->kind() == c10::prim::Constant) {
                values[n->output()] = jit::toIValue(n->output()).value_or(c10::IValue());
                continue;
            }
            if (is_assertion(n)) {
                // The branch taken raises: let autograd's run of the real head say why.
                if (raises(n->blocks()[values.at(n->input(0)).toBool() ? 0 : 1])) return {};
                continue;
            }
            if (n->kind() == c10::prim::GetAttr) {
                values[n->output()] = values.at(n->input(0)).toObject()->getAttr(n->s(c10::attr::name));
                continue;
            }
            auto it = step_of.find(n);
            if (it != step_of.end()) {
                Step& s = *it->second;
                const torch::Tensor in = values.at(n->input(0)).toTensor();
                s.input_shape = in.sizes().vec();
                if (is_dropout(n) && values.at(n->input(2)).toBool()) return {};  // training mode
            }
            if (it != step_of.end() && it->second->kind == Kind::kLinear) {
                const torch::Tensor in = values.at(n->input(0)).toTensor();
                if (in.dim() == 2 && in.size(0) == 1) {
                    // One row: a matrix-vector product reads the weight once at memory speed,
                    // where OpenBLAS's one-row matrix product takes over twice as long (VGG-16's
                    // first Linear: 12 vs 29 ms). Same values up to rounding.
                    const torch::Tensor weight = values.at(n->input(1)).toTensor();
                    const c10::IValue bias = values.at(n->input(2));
                    torch::Tensor out = torch::mv(weight, in[0]);
                    if (bias.isTensor()) out = out + bias.toTensor();
                    values[n->output()] = out.unsqueeze(0);
                    it->second->saved = weight;
                    continue;
                }
            }
            jit::Stack stack;
            for (const jit::Value* v : n->inputs()) stack.push_back(values.at(v));
            if (n->kind() == c10::prim::ListConstruct) {
                c10::impl::GenericList list(n->output()->type()->expectRef<c10::ListType>().getElementType());
                for (const c10::IValue& v : stack) list.push_back(v);
                values[n->output()] = std::move(list);
                continue;
            }
            n->getOperation()(stack);
            const std::size_t outputs = n->outputs().size();
            for (std::size_t i = 0; i < outputs; ++i) values[n->outputs()[i]] = stack[stack.size() - outputs + i];
            if (it == step_of.end()) continue;
            Step& s = *it->second;
            const torch::Tensor out = values.at(n->output()).toTensor();
            switch (s.kind) {
                case Kind::kLinear: s.saved = values.at(n->input(1)).toTensor(); break;
                case Kind::kRelu: s.saved = out > 0; break;
                case Kind::kClamp: {
                    // From the output: an in-place hardtanh_ has overwritten its input.
                    const double lo = values.at(n->input(1)).toScalar().toDouble();
                    const double hi = values.at(n->input(2)).toScalar().toDouble();
                    s.saved = (out > lo) & (out < hi);
                    break;
                }
                case Kind::kBlockPool: {
                    const int64_t h = s.input_shape.at(2), w = s.input_shape.at(3);
                    const int64_t oh = out.size(2), ow = out.size(3);
                    if (h % oh != 0 || w % ow != 0) return {};  // overlapping adaptive windows
                    s.dims = {h / oh, w / ow};
                    break;
                }
                case Kind::kMean: {
                    s.dims.clear();
                    for (int64_t d : values.at(n->input(1)).toIntVector()) {
                        d = d < 0 ? d + static_cast<int64_t>(s.input_shape.size()) : d;
                        if (d <= 0) return {};  // a mean over the batch
                        s.dims.push_back(d);
                    }
                    std::sort(s.dims.begin(), s.dims.end());
                    s.keepdim = values.at(n->input(2)).toBool();
                    break;
                }
                default: break;
            }
        }
        torch::Tensor logits = values.at(graph_->outputs()[0]).toTensor();
        if (logits.dim() != 2 || logits.size(0) != a.size(0)) return {};
        classes_ = logits.size(1);
        logits_options_ = logits.options();
        return logits;
    } catch (const c10::Error&) {
        return {};  // an operation this interpreter cannot run: autograd will
    }
}

torch::Tensor ChainHead::gradients(const torch::Tensor& targets) const {
    torch::NoGradGuard no_grad;
    const int64_t batch = targets.size(0), k = targets.size(1);
    // g is [B, k, ...]: row (b, j) is the gradient of logit targets[b, j] of image b; masks
    // recorded on the B forward rows broadcast over j.
    torch::Tensor g = torch::zeros({batch, k, classes_}, logits_options_);
    g.scatter_(2, targets.unsqueeze(2).to(g.device(), torch::kLong), 1.0);
    auto with_rows = [&](const std::vector<int64_t>& shape) {
        std::vector<int64_t> out{batch, k};
        out.insert(out.end(), shape.begin() + 1, shape.end());
        return out;
    };
    for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) {
        const Step& s = *it;
        switch (s.kind) {
            case Kind::kIdentity: break;
            case Kind::kReshape: g = g.reshape(with_rows(s.input_shape)); break;
            case Kind::kLinear: g = linear_backward(g, s.saved.to(g.dtype()), batch * k); break;
            case Kind::kRelu:
            case Kind::kClamp: g = g * s.saved.unsqueeze(1); break;
            case Kind::kBlockPool: {
                const int64_t kh = s.dims[0], kw = s.dims[1];
                if (kh * kw == 1) break;
                g = g / static_cast<double>(kh * kw);
                if (g.size(3) == 1 && g.size(4) == 1) g = g.expand(with_rows(s.input_shape));
                else g = g.repeat_interleave(kh, 3).repeat_interleave(kw, 4);
                break;
            }
            case Kind::kMean: {
                int64_t count = 1;
                for (int64_t d : s.dims) count *= s.input_shape.at(static_cast<std::size_t>(d));
                if (!s.keepdim)
                    for (int64_t d : s.dims) g = g.unsqueeze(d + 1);  // ascending: each lands at its place
                g = (g / static_cast<double>(count)).expand(with_rows(s.input_shape));
                break;
            }
        }
    }
    std::vector<int64_t> rows{batch * k};
    rows.insert(rows.end(), g.sizes().begin() + 2, g.sizes().end());
    // A global pooling leaves g expanded over the positions (stride 0): kept as a view, the
    // rules read it without a [B*k, K, h, w] copy (none of them writes into the gradient).
    return g.reshape(rows);
}

}  // namespace sightline::detail
