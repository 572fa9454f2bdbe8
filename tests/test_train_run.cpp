// Whole training runs on a tiny in-memory dataset (seconds each): outputs, learning,
// determinism, exact resume after a stop between and within epochs, bad input.
#include <cmath>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/script.h>

#include "sightline/train.hpp"
#include "test_support.hpp"
#include "test_train_toy.hpp"

using namespace sightline;
using test::message_of;
using test::ToyDataset;

namespace {

TrainOptions tiny_run(const fs::path& out) {
    TrainOptions o;
    o.data = "toy";
    o.out = out;
    o.width = 4;
    o.hidden = 8;
    o.epochs = 3;
    o.batch = 4;
    o.lr = 0.05;
    o.workers = 2;
    return o;
}

using Val = std::vector<std::pair<std::string, const Dataset*>>;

// Every parameter and buffer of two saved models, compared bit for bit.
void expect_same_weights(const fs::path& a, const fs::path& b, bool same = true) {
    torch::jit::Module ma = torch::jit::load(a.string()), mb = torch::jit::load(b.string());
    auto pa = ma.named_parameters(true), pb = mb.named_parameters(true);
    bool all_equal = true;
    std::size_t n = 0;
    auto ib = pb.begin();
    for (const auto& p : pa) {
        ASSERT_EQ(p.name, (*ib).name);
        all_equal &= torch::equal(p.value, (*ib).value);
        ++ib, ++n;
    }
    auto ba = ma.named_buffers(true), bb = mb.named_buffers(true);
    auto jb = bb.begin();
    for (const auto& t : ba) {
        all_equal &= torch::equal(t.value, (*jb).value);
        ++jb;
    }
    EXPECT_GT(n, 10u);
    EXPECT_EQ(all_equal, same) << a << " vs " << b;
}

std::vector<nlohmann::json> metrics_lines(const fs::path& run) {
    std::vector<nlohmann::json> lines;
    std::istringstream in(read_file(run / "metrics.jsonl"));
    for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
    return lines;
}

}  // namespace

TEST(TrainRun, WritesModelCardMetricsAndLearnsTheToyTask) {
    fs::path run = test::scratch_dir("run");
    ToyDataset train(24), val(12);
    TrainOptions o = tiny_run(run);
    o.epochs = 8;
    o.width = 8;
    o.lr = 0.1;
    o.jitter = false;  // the toy classes are colours: colour jitter would change the task
    std::vector<EpochMetrics> seen;
    TrainSetup setup;
    TrainResult r = train_classifier(train, Val{{"val", &val}}, o, {nullptr, [&](const EpochMetrics& m) { seen.push_back(m); }, nullptr},
                                     [&](const TrainSetup& s) { setup = s; });
    EXPECT_FALSE(r.interrupted);
    EXPECT_EQ(setup.objective, Objective::kSingleLabel);
    EXPECT_EQ(setup.input_size, 16);
    EXPECT_EQ(setup.steps_per_epoch, 6);
    ASSERT_EQ(seen.size(), 8u);
    EXPECT_LT(seen.back().loss, seen.front().loss);
    EXPECT_GE(seen.back().train_score, 0.9);
    ASSERT_EQ(seen.back().val.size(), 1u);
    EXPECT_EQ(seen.back().val[0].first, "val_acc");
    EXPECT_GE(seen.back().val[0].second, 0.9);

    std::vector<nlohmann::json> lines = metrics_lines(run);
    ASSERT_EQ(lines.size(), 8u);
    EXPECT_EQ(lines[7]["epoch"], 8);
    for (const char* key : {"loss", "train_score", "val_acc", "lr", "data_wait_share", "seconds"})
        EXPECT_TRUE(lines[7].contains(key)) << key;
    EXPECT_GE(lines[7]["data_wait_share"].get<double>(), 0.0);
    EXPECT_LE(lines[7]["data_wait_share"].get<double>(), 1.0);

    ModelCard card = read_model_card(run / "model.json");
    EXPECT_EQ(card.arch, "resnet_gap");
    EXPECT_EQ(card.head, HeadDesign::kGapLinear);
    EXPECT_EQ(card.input_size, 16);
    EXPECT_EQ(card.class_names, (std::vector<std::string>{"red", "green", "blue"}));
    torch::jit::Module m = torch::jit::load((run / "model.pt").string());
    EXPECT_FALSE(m.is_training());
    EXPECT_EQ(m.attr("sightline_class_names").toListRef().size(), 3u);
    // The saved model classifies the validation images as well as the run said.
    LoaderOptions lo;
    lo.batch_size = 12;
    lo.input_size = 16;
    lo.shuffle = false;
    lo.drop_last = false;
    BatchLoader loader(val, lo);
    loader.start_epoch(0);
    Batch b = *loader.next();
    torch::NoGradGuard no_grad;
    EXPECT_DOUBLE_EQ(top1_accuracy(m.forward({b.images}).toTensor(), b.targets), seen.back().val[0].second);
}

TEST(TrainRun, SameSeedSameWeightsOtherSeedOthers) {
    ToyDataset train(16);
    fs::path a = test::scratch_dir("a"), b = test::scratch_dir("b"), c = test::scratch_dir("c");
    TrainOptions o = tiny_run(a);
    o.epochs = 2;
    train_classifier(train, {}, o);
    o.out = b;
    o.workers = 3;  // the loader's thread count never changes the numbers
    train_classifier(train, {}, o);
    o.out = c;
    o.seed = 7;
    train_classifier(train, {}, o);
    expect_same_weights(a / "model.pt", b / "model.pt", true);
    expect_same_weights(a / "model.pt", c / "model.pt", false);
}

TEST(TrainRun, StopAfterAnEpochThenResumeEndsBitIdentical) {
    ToyDataset train(16);
    fs::path whole = test::scratch_dir("whole"), parts = test::scratch_dir("parts");
    TrainOptions o = tiny_run(whole);
    train_classifier(train, {}, o);

    o.out = parts;
    o.stop_after_epoch = 1;
    TrainResult first = train_classifier(train, {}, o);
    EXPECT_TRUE(first.interrupted);
    EXPECT_EQ(first.epochs_done, 1);
    EXPECT_FALSE(fs::exists(parts / "model.pt"));
    EXPECT_TRUE(fs::exists(parts / "checkpoint" / "checkpoint.pt"));
    EXPECT_EQ(metrics_lines(parts).size(), 1u);

    o.stop_after_epoch = 0;
    o.resume = true;
    TrainSetup setup;
    TrainResult second = train_classifier(train, {}, o, {}, [&](const TrainSetup& s) { setup = s; });
    EXPECT_EQ(setup.start_epoch, 1);
    EXPECT_FALSE(second.interrupted);
    expect_same_weights(whole / "model.pt", parts / "model.pt", true);
    std::vector<nlohmann::json> a = metrics_lines(whole), b = metrics_lines(parts);
    ASSERT_EQ(b.size(), 3u);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(a[i]["loss"], b[i]["loss"]) << i;
}

TEST(TrainRun, StopWithinAnEpochThenResumeEndsBitIdenticalWithAdamWAndMixup) {
    ToyDataset train(16, 16, /*multi=*/true);
    fs::path whole = test::scratch_dir("whole"), parts = test::scratch_dir("parts");
    TrainOptions o = tiny_run(whole);
    o.optimizer = OptimizerKind::kAdamW;
    o.lr = 0.003;
    o.mixup = 0.4;
    o.schedule = ScheduleKind::kPoly;
    o.warmup_epochs = 1;
    o.arch = "resnet_mlp";
    train_classifier(train, {}, o);

    o.out = parts;
    int steps = 0;
    TrainCallbacks stop_at_six{nullptr, nullptr, [&] { return ++steps == 6; }};  // epoch 2, step 2 of 4
    TrainResult first = train_classifier(train, {}, o, stop_at_six);
    EXPECT_TRUE(first.interrupted);
    EXPECT_EQ(first.epochs_done, 1);
    EXPECT_EQ(first.step_in_epoch, 2);
    o.resume = true;
    TrainSetup setup;
    train_classifier(train, {}, o, {}, [&](const TrainSetup& s) { setup = s; });
    EXPECT_EQ(setup.objective, Objective::kMultiLabel);
    EXPECT_EQ(setup.start_epoch, 1);
    EXPECT_EQ(setup.start_step, 2);
    expect_same_weights(whole / "model.pt", parts / "model.pt", true);
    std::vector<nlohmann::json> a = metrics_lines(whole), b = metrics_lines(parts);
    ASSERT_EQ(b.size(), 3u);
    EXPECT_EQ(a[1]["loss"], b[1]["loss"]);  // the interrupted epoch's mean loss carried over
    EXPECT_EQ(a[1]["train_score"], b[1]["train_score"]);
}

TEST(TrainRun, ShuffledLabelsTrainADifferentModel) {
    ToyDataset train(16);
    fs::path a = test::scratch_dir("true"), b = test::scratch_dir("shuffled");
    TrainOptions o = tiny_run(a);
    o.epochs = 1;
    train_classifier(train, {}, o);
    o.out = b;
    o.shuffle_labels = true;
    train_classifier(train, {}, o);
    expect_same_weights(a / "model.pt", b / "model.pt", false);
}

TEST(TrainRun, EveryArchitectureTrainsAndSaves) {
    ToyDataset train(8);
    for (const ArchInfo& arch : architectures()) {
        fs::path run = test::scratch_dir(arch.name);
        TrainOptions o = tiny_run(run);
        o.arch = arch.name;
        o.epochs = 1;
        train_classifier(train, {}, o);
        const ModelCard card = read_model_card(run / "model.json");
        EXPECT_EQ(card.head, arch.head) << arch.name;
        EXPECT_EQ(card.arch, arch.name);
        // The saved model loads and gives finite logits, one per object class (no background) ...
        torch::jit::Module m = torch::jit::load((run / "model.pt").string());
        EXPECT_FALSE(m.is_training()) << arch.name;
        torch::NoGradGuard no_grad;
        const torch::Tensor logits = m.forward({torch::rand({2, 3, card.input_size, card.input_size})}).toTensor();
        EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 3})) << arch.name;
        EXPECT_TRUE(torch::isfinite(logits).all().item<bool>()) << arch.name;
        // ... and the epoch's loss is a finite, positive number.
        const std::vector<nlohmann::json> lines = metrics_lines(run);
        ASSERT_EQ(lines.size(), 1u) << arch.name;
        const double loss = lines[0].at("loss").get<double>();
        EXPECT_TRUE(std::isfinite(loss) && loss > 0) << arch.name << ": loss " << loss;
    }
}

// ---- bad input: one clear message, nothing written or overwritten ---------------------------

TEST(TrainRunErrors, EmptyTrainingSplit) {
    fs::path run = test::scratch_dir("run") / "out";
    ToyDataset empty(0);
    EXPECT_EQ(message_of([&] { train_classifier(empty, {}, tiny_run(run)); }),
              "toy (split 'train'): the training split has no images");
    EXPECT_FALSE(fs::exists(run));
}

TEST(TrainRunErrors, FewerImagesThanOneBatch) {
    fs::path run = test::scratch_dir("run") / "out";
    ToyDataset three(3);
    EXPECT_EQ(message_of([&] { train_classifier(three, {}, tiny_run(run)); }),
              "toy (split 'train'): 3 training images, fewer than one batch of 4 (lower --batch)");
}

TEST(TrainRunErrors, ExistingRunIsNotOverwrittenWithoutResume) {
    fs::path run = test::scratch_dir("run");
    ToyDataset train(8);
    TrainOptions o = tiny_run(run);
    o.epochs = 1;
    train_classifier(train, {}, o);
    std::string before = read_file(run / "model.pt"), metrics = read_file(run / "metrics.jsonl");
    o.seed = 5;
    EXPECT_EQ(message_of([&] { train_classifier(train, {}, o); }),
              (run / "checkpoint" / "checkpoint.pt").string() +
                  ": a run exists here; pass --resume to continue it or choose another --out");
    EXPECT_EQ(read_file(run / "model.pt"), before);
    EXPECT_EQ(read_file(run / "metrics.jsonl"), metrics);
}

TEST(TrainRunErrors, ResumeWithAnotherArchitectureOrOptions) {
    fs::path run = test::scratch_dir("run");
    ToyDataset train(8);
    TrainOptions o = tiny_run(run);
    o.stop_after_epoch = 1;
    train_classifier(train, {}, o);
    std::string checkpoint = read_file(run / "checkpoint" / "checkpoint.pt");
    o.stop_after_epoch = 0;
    o.resume = true;
    o.arch = "vgg_gap";
    const std::string path = (run / "checkpoint" / "checkpoint.pt").string();
    EXPECT_EQ(message_of([&] { train_classifier(train, {}, o); }),
              path + ": the checkpoint is of architecture 'resnet_gap', not 'vgg_gap' (--arch)");
    o.arch = "resnet_gap";
    o.width = 8;
    EXPECT_EQ(message_of([&] { train_classifier(train, {}, o); }),
              path + ": the checkpoint was made with --width 4, this run has --width 8 (resume with the same options)");
    EXPECT_EQ(read_file(run / "checkpoint" / "checkpoint.pt"), checkpoint);
    EXPECT_FALSE(fs::exists(run / "model.pt"));
}

TEST(TrainRunErrors, ResumeWithoutCheckpointOrWithAGarbledOne) {
    fs::path run = test::scratch_dir("run");
    ToyDataset train(8);
    TrainOptions o = tiny_run(run);
    o.resume = true;
    const std::string path = (run / "checkpoint" / "checkpoint.pt").string();
    EXPECT_EQ(message_of([&] { train_classifier(train, {}, o); }), path + ": no checkpoint to resume from");
    fs::create_directories(run / "checkpoint");
    write_file_atomic(run / "checkpoint" / "checkpoint.pt", std::string("not a zip archive"));
    EXPECT_EQ(message_of([&] { train_classifier(train, {}, o); }).rfind(path + ": not a readable checkpoint (", 0), 0u);
}

TEST(TrainRunErrors, OutputFolderThatCannotBeCreated) {
    fs::path dir = test::scratch_dir("run");
    write_file_atomic(dir / "file", std::string("x"));
    ToyDataset train(8);
    TrainOptions o = tiny_run(dir / "file" / "run");
    EXPECT_EQ(message_of([&] { train_classifier(train, {}, o); }).rfind((dir / "file" / "run").string() + ": cannot create output folder", 0), 0u);
    EXPECT_EQ(read_file(dir / "file"), "x");
}

TEST(TrainRunErrors, UnknownArchitectureListsTheChoices) {
    ToyDataset train(8);
    TrainOptions o = tiny_run(test::scratch_dir("run"));
    o.arch = "alexnet";
    try {
        train_classifier(train, {}, o);
        FAIL();
    } catch (const UsageError& e) {
        EXPECT_STREQ(e.what(), "unknown architecture 'alexnet' (choices: resnet_gap, resnet_flatten, resnet_mlp, vgg_gap)");
    }
}

TEST(TrainRun, LeavesTheProcessThreadsAndRandomStateAlone) {
    // A resumed run restores the checkpoint's generator state internally; the caller's thread
    // count and global generator are as they were once the call returns.
    ToyDataset train(16);
    fs::path out = test::scratch_dir("state");
    const int threads_before = at::get_num_threads();
    at::set_num_threads(1);
    torch::manual_seed(1234);
    const torch::Tensor state_before = at::detail::getDefaultCPUGenerator().get_state();
    TrainOptions o = tiny_run(out);
    o.stop_after_epoch = 1;
    EXPECT_TRUE(train_classifier(train, {}, o).interrupted);
    o.stop_after_epoch = 0;
    o.resume = true;
    EXPECT_FALSE(train_classifier(train, {}, o).interrupted);
    EXPECT_EQ(at::get_num_threads(), 1);
    EXPECT_TRUE(torch::equal(at::detail::getDefaultCPUGenerator().get_state(), state_before));
    at::set_num_threads(threads_before);
}
