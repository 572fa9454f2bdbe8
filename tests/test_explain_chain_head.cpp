// The chain head (src/explain/chain_head.cpp): its hand-written k-row backward against
// autograd on heads made here, including a weight large enough for the banded product and the
// one-row matrix-vector paths, and the heads it must leave to autograd.
#include <gtest/gtest.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "explain/chain_head.hpp"

namespace chain_head_test {

using sightline::detail::ChainHead;

torch::jit::Module head_module(const std::string& forward, int64_t in, int64_t hidden, int64_t classes) {
    torch::manual_seed(11);
    torch::jit::Module m("Head");
    m.register_parameter("w1", torch::randn({hidden, in}) * 0.02, false);
    m.register_parameter("b1", torch::randn({hidden}) * 0.1, false);
    m.register_parameter("w2", torch::randn({classes, hidden}) * 0.05, false);
    m.register_parameter("b2", torch::randn({classes}) * 0.1, false);
    m.register_attribute("drop", c10::BoolType::get(), false);
    m.define(forward);
    m.eval();
    return m;
}

std::shared_ptr<ChainHead> chain_of(torch::jit::Module& m) {
    auto graph = m.get_method("forward").graph()->copy();
    torch::jit::Inline(*graph);
    return ChainHead::compile(graph, m._ivalue());
}

// d logits[b, targets[b,j]] / dA by autograd, one (image, target) row at a time: [B*k, ...].
torch::Tensor autograd_rows(torch::jit::Module& m, const torch::Tensor& a, const torch::Tensor& targets) {
    std::vector<torch::Tensor> rows;
    for (int64_t b = 0; b < targets.size(0); ++b)
        for (int64_t j = 0; j < targets.size(1); ++j) {
            torch::Tensor leaf = a.slice(0, b, b + 1).detach().requires_grad_(true);
            torch::Tensor y = m.forward({leaf}).toTensor();
            rows.push_back(torch::autograd::grad({y[0][targets[b][j].item<int64_t>()]}, {leaf})[0][0]);
        }
    return torch::stack(rows);
}

const char* kVggLike = R"py(
def forward(self, x):
    x = torch.flatten(x, 1)
    x = torch.relu(torch.linear(x, self.w1, self.b1))
    x = torch.dropout(x, 0.5, self.drop)
    return torch.linear(x, self.w2, self.b2)
)py";

}  // namespace chain_head_test

using chain_head_test::autograd_rows;
using chain_head_test::chain_of;
using chain_head_test::head_module;

TEST(ChainHead, KRowsMatchAutogradThroughALargeLinear) {
    // 4096 -> 1024: 4M weights, the banded product for 2-8 rows; one row takes the
    // matrix-vector products.
    torch::jit::Module m = head_module(chain_head_test::kVggLike, 4096, 1024, 12);
    auto chain = chain_of(m);
    ASSERT_TRUE(chain);
    for (int64_t batch : {1, 2}) {
        for (int64_t k : {1, 3}) {
            torch::Tensor a = torch::randn({batch, 16, 16, 16});
            torch::Tensor logits = chain->forward(a);
            ASSERT_TRUE(logits.defined());
            EXPECT_TRUE(torch::allclose(logits, m.forward({a}).toTensor(), 1e-4, 1e-5));
            torch::Tensor targets = std::get<1>(logits.topk(k, 1));
            torch::Tensor g = chain->gradients(targets);
            torch::Tensor ref = autograd_rows(m, a, targets);
            ASSERT_EQ(g.sizes(), ref.sizes());
            EXPECT_LT((g - ref).abs().max().item<double>(), 1e-5 * ref.abs().max().item<double>())
                << "batch " << batch << ", k " << k;
        }
    }
}

TEST(ChainHead, PoolingMeanAndReluSixMatchAutograd) {
    torch::jit::Module m = head_module(R"py(
def forward(self, x):
    x = torch.hardtanh(x, 0.0, 6.0)
    x = torch.adaptive_avg_pool2d(x, [2, 2])
    x = torch.mean(x, [3])
    x = torch.flatten(x, 1)
    return torch.linear(x, self.w2, self.b2)
)py", 8, 16, 5);
    auto chain = chain_of(m);
    ASSERT_TRUE(chain);
    torch::Tensor a = torch::randn({3, 8, 6, 4}) * 4;
    torch::Tensor logits = chain->forward(a);
    ASSERT_TRUE(logits.defined());
    torch::Tensor targets = std::get<1>(logits.topk(2, 1));
    torch::Tensor ref = autograd_rows(m, a, targets);
    EXPECT_LT((chain->gradients(targets) - ref).abs().max().item<double>(), 1e-6);
}

TEST(ChainHead, OtherHeadsAreLeftToAutograd) {
    // A sigmoid is not a chain step; a dropout in training mode is refused at run time.
    torch::jit::Module sigmoid = head_module(R"py(
def forward(self, x):
    return torch.linear(torch.sigmoid(torch.flatten(x, 1)), self.w2, self.b2)
)py", 8, 8, 4);
    EXPECT_FALSE(chain_of(sigmoid));
    torch::jit::Module m = head_module(chain_head_test::kVggLike, 8, 8, 4);
    m.setattr("drop", true);
    auto chain = chain_of(m);
    ASSERT_TRUE(chain);
    EXPECT_FALSE(chain->forward(torch::randn({1, 8, 1, 1})).defined());
    // Average pooling into overlapping windows (5 -> 3) has no block rule.
    torch::jit::Module overlapping = head_module(R"py(
def forward(self, x):
    return torch.linear(torch.flatten(torch.adaptive_avg_pool2d(x, [3, 3]), 1), self.w1, self.b1)
)py", 18, 4, 4);
    auto pooled = chain_of(overlapping);
    ASSERT_TRUE(pooled);
    EXPECT_FALSE(pooled->forward(torch::randn({1, 2, 5, 5})).defined());
    EXPECT_TRUE(pooled->forward(torch::randn({1, 2, 6, 6})).defined());
}
