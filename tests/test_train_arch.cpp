// The built-in architectures: shapes, the features/head split, train/eval switching of
// BatchNorm inside define()d code, trainable leaf parameters, and loading in Python.
#include <cstdio>
#include <sstream>

#include <gtest/gtest.h>
#include <torch/script.h>

#include "sightline/architectures.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace {

ArchOptions tiny(int64_t classes = 3, int64_t size = 32) {
    ArchOptions o;
    o.num_classes = classes;
    o.input_size = size;
    o.width = 4;
    o.hidden = 8;
    return o;
}

torch::Tensor run(torch::jit::Module& m, const std::string& method, const torch::Tensor& x) {
    return m.get_method(method)({x}).toTensor();
}

}  // namespace

TEST(Architectures, EveryRowBuildsAndForwardIsHeadOfFeatures) {
    for (const ArchInfo& arch : architectures()) {
        for (int64_t os : {4, 8, 16}) {
            ArchOptions o = tiny();
            o.output_stride = os;
            torch::jit::Module m = build_architecture(arch.name, o);
            m.eval();
            torch::Tensor x = torch::randn({2, 3, 32, 32});
            torch::Tensor a = run(m, "features", x);
            EXPECT_EQ(a.sizes(), (std::vector<int64_t>{2, 32, 32 / os, 32 / os})) << arch.name;
            torch::Tensor logits = run(m, "forward", x);
            EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 3})) << arch.name;
            EXPECT_TRUE(torch::equal(logits, run(m, "head", a))) << arch.name;
            EXPECT_EQ(m.attr("sightline_arch").toStringRef(), arch.name);
            EXPECT_EQ(m.attr("sightline_head").toStringRef(), head_design_name(arch.head));
        }
    }
}

TEST(Architectures, GapHeadIsLinearMapOfChannelMeans) {
    // Slow twin of head(A) for the CAM architecture: W mean(A) + b by hand.
    torch::jit::Module m = build_architecture("resnet_gap", tiny());
    torch::Tensor a = torch::rand({2, 32, 4, 4});
    torch::Tensor w = m.attr("fc").toModule().attr("weight").toTensor();
    torch::Tensor b = m.attr("fc").toModule().attr("bias").toTensor();
    torch::Tensor expected = torch::matmul(a.mean({2, 3}), w.t()) + b;
    EXPECT_TRUE(torch::allclose(run(m, "head", a), expected, 1e-5, 1e-6));
}

TEST(Architectures, FlattenHeadRejectsOtherSizesWithClearMessage) {
    torch::jit::Module m = build_architecture("resnet_flatten", tiny());
    m.eval();
    EXPECT_EQ(run(m, "forward", torch::randn({1, 3, 32, 32})).sizes(), (std::vector<int64_t>{1, 3}));
    try {
        run(m, "forward", torch::randn({1, 3, 48, 48}));
        FAIL() << "expected an error";
    } catch (const std::exception& e) {  // torch::jit::JITException
        EXPECT_NE(std::string(e.what()).find("resnet_flatten: the flatten head needs 4x4 features (a 32x32 input)"),
                  std::string::npos)
            << e.what();
    }
}

TEST(Architectures, TrainAndEvalSwitchBatchNormInsideDefinedCode) {
    torch::jit::Module m = build_architecture("resnet_gap", tiny());
    torch::jit::Module bn = m.attr("stem").toModule().attr("bn").toModule();
    torch::Tensor x = torch::randn({4, 3, 32, 32}) * 3 + 1;
    torch::Tensor before = bn.attr("running_mean").toTensor().clone();
    m.train();
    EXPECT_TRUE(bn.is_training());
    torch::Tensor y_train = run(m, "forward", x);
    // Batch statistics were used and the running mean moved.
    EXPECT_FALSE(torch::equal(before, bn.attr("running_mean").toTensor()));
    m.eval();
    EXPECT_FALSE(bn.is_training());
    torch::Tensor running = bn.attr("running_mean").toTensor().clone();
    torch::Tensor y_eval = run(m, "forward", x);
    EXPECT_TRUE(torch::equal(running, bn.attr("running_mean").toTensor()));
    EXPECT_FALSE(torch::allclose(y_train, y_eval));
    // In eval mode a sample's output does not depend on the rest of the batch.
    torch::Tensor alone = run(m, "forward", x.slice(0, 0, 1));
    EXPECT_TRUE(torch::allclose(alone, y_eval.slice(0, 0, 1), 1e-4, 1e-5));
}

TEST(Architectures, ParametersAreTrainableLeaves) {
    torch::jit::Module m = build_architecture("vgg_gap", tiny());
    int count = 0;
    for (const auto& p : m.named_parameters(true)) {
        EXPECT_TRUE(p.value.requires_grad()) << p.name;
        EXPECT_TRUE(p.value.is_leaf()) << p.name;
        ++count;
    }
    EXPECT_GT(count, 10);
    torch::Tensor loss = run(m, "forward", torch::randn({2, 3, 32, 32})).pow(2).sum();
    loss.backward();
    for (const auto& p : m.named_parameters(true)) {
        ASSERT_TRUE(p.value.grad().defined()) << p.name;
        EXPECT_GT(p.value.grad().abs().sum().item<double>(), 0.0) << p.name;
    }
}

TEST(Architectures, SameSeedSameWeightsOtherSeedOthers) {
    ArchOptions o = tiny();
    torch::jit::Module a = build_architecture("resnet_mlp", o), b = build_architecture("resnet_mlp", o);
    o.seed = 2;
    torch::jit::Module c = build_architecture("resnet_mlp", o);
    auto pa = a.parameters(), pb = b.parameters(), pc = c.parameters();
    auto ib = pb.begin(), ic = pc.begin();
    bool any_differs = false;
    for (const auto& t : pa) {
        EXPECT_TRUE(torch::equal(t, *ib));
        any_differs |= !torch::equal(t, *ic);
        ++ib, ++ic;
    }
    EXPECT_TRUE(any_differs);
}

TEST(Architectures, UnknownNameListsTheChoices) {
    try {
        build_architecture("resnet9000", tiny());
        FAIL() << "expected an error";
    } catch (const UsageError& e) {
        EXPECT_EQ(std::string(e.what()),
                  "unknown architecture 'resnet9000' (choices: resnet_gap, resnet_flatten, resnet_mlp, vgg_gap)");
    }
}

TEST(Architectures, BadOptionsNameTheOption) {
    ArchOptions o = tiny();
    o.output_stride = 12;
    EXPECT_THROW(
        {
            try {
                build_architecture("resnet_gap", o);
            } catch (const UsageError& e) {
                EXPECT_STREQ(e.what(), "--output-stride must be 4, 8 or 16, got 12");
                throw;
            }
        },
        UsageError);
}

TEST(Architectures, ModelCardRoundTripsAndNamesMissingField) {
    fs::path dir = test::scratch_dir("card");
    ModelCard card{"resnet_flatten", HeadDesign::kFlattenLinear, 64, 16, {"boat", "train"},
                   {0.5, 0.4, 0.3}, {0.2, 0.2, 0.25}};
    write_file_atomic(dir / "model.json", model_card_json(card));
    ModelCard back = read_model_card(dir / "model.json");
    EXPECT_EQ(back.arch, card.arch);
    EXPECT_EQ(back.head, card.head);
    EXPECT_EQ(back.input_size, 64);
    EXPECT_EQ(back.output_stride, 16);
    EXPECT_EQ(back.class_names, card.class_names);
    EXPECT_EQ(back.mean, card.mean);
    EXPECT_EQ(back.std, card.std);
    write_file_atomic(dir / "bad.json", std::string("{\"arch\": \"resnet_gap\"}"));
    try {
        read_model_card(dir / "bad.json");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()), (dir / "bad.json").string() + ": missing field 'head'");
    }
}

TEST(Architectures, SavedModelRunsInPythonWithFeaturesAndHead) {
    ASSERT_EQ(std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1"), 0)
        << "/usr/bin/python3 has no torch (Debian's python3-torch): cannot check loading in Python";
    fs::path dir = test::scratch_dir("py");
    // One Python process checks every architecture: shapes of forward/features/head, the
    // forward sum against C++'s, the attached class names and that eval() was saved.
    std::string script = "import torch\nx = torch.linspace(-1, 1, 2*3*32*32).reshape(2, 3, 32, 32)\n";
    std::vector<double> expected;
    for (const ArchInfo& arch : architectures()) {
        torch::jit::Module m = build_architecture(arch.name, tiny(5, 32));
        attach_model_card(m, {arch.name, arch.head, 32, 8, {"a", "b", "c", "d", "e"}, {0.5, 0.5, 0.5}, {0.25, 0.25, 0.25}});
        run(m, "forward", torch::randn({2, 3, 32, 32})).sum().backward();  // BN statistics move
        m.eval();
        fs::path pt = dir / (arch.name + ".pt");
        m.save(pt.string());
        torch::Tensor x = torch::linspace(-1, 1, 2 * 3 * 32 * 32).reshape({2, 3, 32, 32});
        expected.push_back(run(m, "forward", x).sum().item<double>());
        script += "m = torch.jit.load('" + pt.string() + "'); a = m.features(x)\n"
                  "print(tuple(m(x).shape), tuple(a.shape), tuple(m.head(a).shape), m.sightline_class_names[4], m.training, float(m(x).sum()))\n";
    }
    write_file_atomic(dir / "check.py", script);
    fs::path out = dir / "out.txt";
    std::string cmd = "/usr/bin/python3 " + (dir / "check.py").string() + " > " + out.string() + " 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << read_file(out);
    std::istringstream lines(read_file(out));
    const std::string prefix = "(2, 5) (2, 32, 4, 4) (2, 5) e False ";
    for (std::size_t i = 0; i < expected.size(); ++i) {
        std::string line;
        ASSERT_TRUE(std::getline(lines, line)) << read_file(out);
        ASSERT_EQ(line.rfind(prefix, 0), 0u) << architectures()[i].name << ": " << line;
        EXPECT_NEAR(std::stod(line.substr(prefix.size())), expected[i], 1e-4 * std::max(1.0, std::abs(expected[i])))
            << architectures()[i].name;
    }
}
