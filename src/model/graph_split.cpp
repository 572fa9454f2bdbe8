// Cut a TorchScript forward graph at a submodule's output (see graph_split.hpp).
#include "model/graph_split.hpp"

#include <algorithm>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/csrc/jit/ir/alias_analysis.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>

#include "sightline/core.hpp"

namespace sightline::detail {

namespace jit = torch::jit;
using Path = std::vector<std::string>;

namespace {

Path split_dotted(const std::string& name) {
    Path parts;
    std::size_t start = 0;
    while (start <= name.size()) {
        std::size_t dot = name.find('.', start);
        if (dot == std::string::npos) dot = name.size();
        parts.push_back(name.substr(start, dot - start));
        start = dot + 1;
    }
    return parts;
}

// "layer4[-1]" / "features[3].conv" (pytorch-grad-cam's way of naming a layer) -> the dotted
// path of names: an index picks a child by position, negative from the end. Empty when the
// text does not name a submodule.
std::optional<Path> resolve_path(const jit::Module& root, const std::string& text) {
    Path path;
    jit::Module m = root;
    auto child_named = [&](const std::string& name) {
        if (name.empty() || !m.hasattr(name) || !m.attr(name).isModule()) return false;
        path.push_back(name);
        m = m.attr(name).toModule();
        return true;
    };
    for (const std::string& part : split_dotted(text)) {
        const std::size_t bracket = part.find('[');
        if (!child_named(part.substr(0, bracket))) return std::nullopt;
        for (std::size_t at = bracket; at != std::string::npos; at = part.find('[', at)) {
            const std::size_t close = part.find(']', at);
            if (close == std::string::npos) return std::nullopt;
            int64_t index = 0;
            try {
                std::size_t used = 0;
                index = std::stoll(part.substr(at + 1, close - at - 1), &used);
                if (used != close - at - 1) return std::nullopt;
            } catch (const std::exception&) {
                return std::nullopt;
            }
            std::vector<std::string> children;
            for (const auto& child : m.named_children()) children.push_back(child.name);
            const auto count = static_cast<int64_t>(children.size());
            if (index < -count || index >= count) return std::nullopt;
            if (!child_named(children[index < 0 ? index + count : index])) return std::nullopt;
            at = close + 1;
            if (at < part.size() && part[at] != '[') return std::nullopt;
        }
    }
    return path;
}

// The attribute path from `self` to the module value `v` (a chain of prim::GetAttr), if any.
std::optional<Path> module_path(jit::Value* v, jit::Value* self) {
    Path reversed;
    while (v != self) {
        jit::Node* n = v->node();
        if (n->kind() != c10::prim::GetAttr) return std::nullopt;
        reversed.push_back(n->s(c10::attr::name));
        v = n->input(0);
    }
    return Path(reversed.rbegin(), reversed.rend());
}

bool is_prefix(const Path& prefix, const Path& path) {
    return prefix.size() < path.size() && std::equal(prefix.begin(), prefix.end(), path.begin());
}

std::optional<jit::Module> find_submodule(const jit::Module& root, const Path& path) {
    jit::Module m = root;
    for (const auto& name : path) {
        if (!m.hasattr(name)) return std::nullopt;
        c10::IValue attr = m.attr(name);
        if (!attr.isModule()) return std::nullopt;
        m = attr.toModule();
    }
    return m;
}

// True when `v` is defined inside one of the blocks of `node` (at any depth).
bool defined_inside(jit::Value* v, jit::Node* node) {
    for (jit::Block* b = v->node()->owningBlock(); b && b->owningNode();
         b = b->owningNode()->owningBlock())
        if (b->owningNode() == node) return true;
    return false;
}

// Values `root` reads, including those read by nodes nested in its blocks (loops, ifs) that
// are defined outside `root`.
void collect_reads(jit::Node* node, jit::Node* root, std::vector<jit::Value*>& out) {
    for (jit::Value* v : node->inputs())
        if (!defined_inside(v, root)) out.push_back(v);
    for (jit::Block* block : node->blocks()) {
        for (jit::Node* inner : block->nodes()) collect_reads(inner, root, out);
        for (jit::Value* v : block->outputs())
            if (!defined_inside(v, root)) out.push_back(v);
    }
}

std::vector<jit::Node*> top_nodes(jit::Graph& graph) {
    std::vector<jit::Node*> nodes;
    for (jit::Node* n : graph.block()->nodes()) nodes.push_back(n);
    return nodes;
}

// Inlines calls of the target's ancestors until the target's own call is at the top level.
// Returns the top-level call nodes of the target.
std::vector<jit::Node*> expose_layer_calls(jit::Graph& graph, const jit::Module& module,
                                           const Path& target) {
    jit::Value* self = graph.inputs().at(0);
    for (bool inlined = true; inlined;) {
        inlined = false;
        for (jit::Node* n : top_nodes(graph)) {
            if (n->kind() != c10::prim::CallMethod) continue;
            auto path = module_path(n->input(0), self);
            if (!path || !is_prefix(*path, target)) continue;
            auto callee_module = find_submodule(module, *path);
            if (!callee_module) continue;
            jit::Method method = callee_module->get_method(n->s(c10::attr::name));
            // The callee's own graph, not its optimized graph: the optimized one has every
            // nested call inlined already, and the target's call would vanish with it.
            jit::GraphFunction& callee = jit::toGraphFunction(method.function());
            jit::inlineCallTo(n, &callee, callee.graph().get());
            inlined = true;
            break;
        }
    }
    std::vector<jit::Node*> calls;
    for (jit::Node* n : top_nodes(graph)) {
        if (n->kind() != c10::prim::CallMethod) continue;
        auto path = module_path(n->input(0), self);
        if (path && *path == target) calls.push_back(n);
    }
    return calls;
}

// Calls of `target` (or of one of its ancestors) nested in a loop or branch of `block`.
bool called_in_nested_block(jit::Block* block, jit::Value* self, const Path& target, bool nested) {
    for (jit::Node* n : block->nodes()) {
        if (nested && n->kind() == c10::prim::CallMethod) {
            auto path = module_path(n->input(0), self);
            if (path && (*path == target || is_prefix(*path, target))) return true;
        }
        for (jit::Block* inner : n->blocks())
            if (called_in_nested_block(inner, self, target, true)) return true;
    }
    return false;
}

// Up to `count` names closest to `typed` (edit distance, ties in definition order).
std::vector<std::string> closest_names(const std::vector<std::string>& names, const std::string& typed,
                                       std::size_t count) {
    auto distance = [](const std::string& a, const std::string& b) {
        std::vector<std::size_t> row(b.size() + 1);
        for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
        for (std::size_t i = 1; i <= a.size(); ++i) {
            std::size_t diagonal = row[0];
            row[0] = i;
            for (std::size_t j = 1; j <= b.size(); ++j) {
                std::size_t up = row[j];
                row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
                diagonal = up;
            }
        }
        return row[b.size()];
    };
    std::vector<std::pair<std::size_t, std::size_t>> ranked;  // (distance, index)
    for (std::size_t i = 0; i < names.size(); ++i) ranked.emplace_back(distance(typed, names[i]), i);
    std::stable_sort(ranked.begin(), ranked.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::string> out;
    for (std::size_t i = 0; i < ranked.size() && i < count; ++i) out.push_back(names[ranked[i].second]);
    return out;
}

std::string unknown_layer_message(const jit::Module& module, const std::string& layer,
                                  const std::string& model_name) {
    std::vector<std::string> children;
    for (const auto& child : module.named_children()) children.push_back(child.name);
    return fmt::format("{}: no layer named '{}'; closest: {}; top-level layers: {} (all: sightline "
                       "inspect --model {} --layers)",
                       model_name, layer, fmt::join(closest_names(all_submodule_names(module), layer, 5), ", "),
                       fmt::join(children, ", "), model_name);
}

// Head inputs (A and the extras) that the head writes into, directly or through a view
// (ReLU(inplace=True) right after the layer, ResNet's `out += identity`, a list append), are
// copied at the head's start: the caller's activations stay as the layer produced them, and
// the head can run again on the same extras (k targets, the bias, sanity steps).
void copy_inputs_the_head_writes(const std::shared_ptr<jit::Graph>& graph) {
    jit::Graph& head = *graph;
    std::vector<jit::Value*> written;
    {
        jit::AliasDb alias(graph);
        for (std::size_t i = 1; i < head.inputs().size(); ++i)
            if (alias.hasWriters(head.inputs()[i])) written.push_back(head.inputs()[i]);
    }
    if (written.empty() || head.block()->nodes().begin() == head.block()->nodes().end()) return;
    jit::WithInsertPoint guard(*head.block()->nodes().begin());
    for (jit::Value* input : written) {
        c10::Symbol copy_op;
        if (input->type()->isSubtypeOf(*c10::TensorType::get())) copy_op = c10::aten::clone;
        else if (input->type()->kind() == c10::TypeKind::ListType) copy_op = c10::aten::list;
        else continue;
        jit::Value* copy = head.insert(copy_op, {input});
        input->replaceAllUsesAfterNodeWith(copy->node(), copy);
    }
}

std::unique_ptr<jit::GraphFunction> make_function(const std::string& name,
                                                  std::shared_ptr<jit::Graph> graph) {
    jit::EliminateDeadCode(graph);
    return std::make_unique<jit::GraphFunction>(c10::QualifiedName("sightline." + name),
                                                std::move(graph), nullptr);
}

}  // namespace

std::string canonical_layer_name(const jit::Module& module, const std::string& layer) {
    std::optional<Path> path = resolve_path(module, layer);
    return path ? fmt::format("{}", fmt::join(*path, ".")) : layer;
}

std::vector<std::string> all_submodule_names(const jit::Module& module) {
    std::vector<std::string> names;
    for (const auto& child : module.named_modules())
        if (!child.name.empty()) names.push_back(child.name);
    return names;
}

std::vector<std::string> top_level_calls(const jit::Module& module) {
    auto graph = module.get_method("forward").graph();
    jit::Value* self = graph->inputs().at(0);
    std::vector<std::string> names;
    for (jit::Node* n : graph->block()->nodes()) {
        if (n->kind() != c10::prim::CallMethod) continue;
        auto path = module_path(n->input(0), self);
        if (path && path->size() == 1) names.push_back(path->front());
    }
    return names;
}

SplitGraph split_at_layer(const jit::Module& module, const std::string& layer,
                          const std::string& model_name) {
    const std::optional<Path> resolved = resolve_path(module, layer);
    if (!resolved) throw UsageError(unknown_layer_message(module, layer, model_name));
    const Path& target = *resolved;
    std::shared_ptr<jit::Graph> graph = module.get_method("forward").graph()->copy();
    std::vector<jit::Node*> calls = expose_layer_calls(*graph, module, target);
    if (calls.empty() && called_in_nested_block(graph->block(), graph->inputs().at(0), target, false))
        throw Error(fmt::format("{}: layer '{}' is called inside a loop or branch of forward, so it has "
                                "no single output to explain; choose a layer outside it (or the "
                                "loop's enclosing module)",
                                model_name, layer));
    if (calls.empty())
        throw Error(fmt::format("{}: layer '{}' is never called by forward (an unused submodule); "
                                "choose another layer",
                                model_name, layer));
    if (calls.size() > 1)
        throw Error(fmt::format("{}: layer '{}' is called {} times in forward, so its output is "
                                "ambiguous; choose a layer that is called once",
                                model_name, layer, calls.size()));
    jit::Node* cut = calls.front();
    if (cut->outputs().size() != 1)
        throw Error(fmt::format("{}: layer '{}' returns {} values; expected one tensor",
                                model_name, layer, cut->outputs().size()));
    jit::Value* activations = cut->output();

    // Which values depend on the model input (everything but `self` and constants).
    std::unordered_set<jit::Value*> depends_on_input(graph->inputs().begin() + 1,
                                                     graph->inputs().end());
    std::vector<jit::Node*> nodes = top_nodes(*graph);
    std::unordered_set<jit::Node*> before_cut;
    // Nodes before the cut that read the model input, directly or through their blocks. A node
    // with no outputs (a guard such as `if x.sum() > t: raise`) is one of them too: it belongs
    // to features only, as the head has none of the values it reads.
    std::unordered_set<jit::Node*> reads_input;
    bool past_cut = false;
    std::vector<jit::Value*> extras;  // input-dependent values crossing the cut, first-use order
    for (jit::Node* n : nodes) {
        std::vector<jit::Value*> reads;
        collect_reads(n, n, reads);
        if (!past_cut) {
            before_cut.insert(n);
            if (std::any_of(reads.begin(), reads.end(),
                            [&](jit::Value* v) { return depends_on_input.count(v) > 0; })) {
                reads_input.insert(n);
                for (jit::Value* out : n->outputs()) depends_on_input.insert(out);
            }
            if (n == cut) past_cut = true;
            continue;
        }
        for (jit::Value* v : reads) {
            bool from_before = v->node() == graph->param_node() || before_cut.count(v->node()) > 0;
            if (from_before && v != activations && depends_on_input.count(v) &&
                std::find(extras.begin(), extras.end(), v) == extras.end())
                extras.push_back(v);
        }
    }
    for (jit::Value* v : graph->outputs())
        if (v != activations && depends_on_input.count(v) &&
            std::find(extras.begin(), extras.end(), v) == extras.end())
            extras.push_back(v);

    // features: (self, x) -> Tuple(A, extras...)
    auto features = std::make_shared<jit::Graph>();
    std::unordered_map<jit::Value*, jit::Value*> env;
    for (jit::Value* in : graph->inputs()) env[in] = features->addInput()->copyMetadata(in);
    auto lookup = [&](jit::Value* v) { return env.at(v); };
    for (jit::Node* n : nodes) {
        jit::Node* copy = features->insertNode(features->createClone(n, lookup));
        for (std::size_t i = 0; i < n->outputs().size(); ++i) env[n->output(i)] = copy->output(i);
        if (n == cut) break;
    }
    std::vector<jit::Value*> feature_outputs{env.at(activations)};
    for (jit::Value* v : extras) feature_outputs.push_back(env.at(v));
    features->registerOutput(features->insertNode(features->createTuple(feature_outputs))->output());

    // head: (self, A, extras...) -> logits. Input-independent values from before the cut
    // (module attributes, constants) are recomputed rather than passed.
    auto head = std::make_shared<jit::Graph>();
    env.clear();
    env[graph->inputs().at(0)] = head->addInput("self")->copyMetadata(graph->inputs().at(0));
    jit::Value* head_activations = head->addInput("activations")->setType(c10::TensorType::get());
    env[activations] = head_activations;
    for (jit::Value* v : extras) env[v] = head->addInput()->setType(v->type());
    past_cut = false;
    for (jit::Node* n : nodes) {
        if (n == cut) { past_cut = true; continue; }
        if (past_cut || reads_input.count(n) == 0) {
            jit::Node* copy = head->insertNode(head->createClone(n, lookup));
            for (std::size_t i = 0; i < n->outputs().size(); ++i) env[n->output(i)] = copy->output(i);
        }
    }
    for (jit::Value* out : graph->outputs()) head->registerOutput(env.at(out));

    copy_inputs_the_head_writes(head);

    SplitGraph split;
    split.num_extras = extras.size();
    split.features = make_function("features", features);
    split.head = make_function("head", head);
    return split;
}

}  // namespace sightline::detail
