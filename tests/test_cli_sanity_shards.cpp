// `sanity --shard I/N` then `sightline merge`: the merged output is the single run's, with every
// random draw (random-logit classes, smooth MPRT's noise) and every model call as the single run
// makes them; shards that cannot be merged are refused with one line.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/script.h>

#include "sightline/architectures.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace {

nlohmann::json json_file(const fs::path& p) { return nlohmann::json::parse(read_file(p)); }

// An untrained (seeded) GAP ResNet of 3 classes: the numbers need not mean anything to be equal.
fs::path shard_toy_model(const fs::path& dir) {
    ArchOptions ao;
    ao.num_classes = 3;
    ao.input_size = 32;
    ao.width = 8;
    ao.seed = 5;
    torch::jit::Module m = build_architecture("resnet_gap", ao);
    m.eval();
    const fs::path path = dir / "toy.pt";
    m.save(path.string());
    return path;
}

fs::path shard_toy_images(const fs::path& dir, int count) {
    fs::create_directories(dir);
    for (int i = 0; i < count; ++i) {
        cv::Mat img(32, 32, CV_8UC3);
        cv::RNG rng(static_cast<uint64_t>(i) + 11);
        rng.fill(img, cv::RNG::UNIFORM, 60, 200);
        cv::circle(img, {8 + 3 * i, 16}, 6, cv::Scalar(240, 20 * i, 30), cv::FILLED);
        write_image_rgb(dir / ("img" + std::to_string(i) + ".png"), img);
    }
    return dir;
}

// Without the time it took, which no two runs share.
nlohmann::json json_without_seconds(nlohmann::json j) {
    j.erase("seconds");
    return j;
}

// The method x step table and the verdicts, as a run or a merge prints them.
std::string printed_table(const std::string& out) {
    const auto start = out.find("method ");
    if (start == std::string::npos) return "(no table)";
    const auto end = std::min(out.find("wrote ", start), out.find("merged ", start));
    return out.substr(start, end - start);
}

}  // namespace

TEST(SanityShards, MergeEqualsTheSingleRunBitForBit) {
    const fs::path root = test::scratch_dir("sanity_shards");
    const fs::path model = shard_toy_model(root), images = shard_toy_images(root / "images", 5);
    // 5 images in blocks of 2: shard 0 of 2 takes blocks 0 and 2 (images 0, 1, 4), shard 1 block 1.
    const std::string common = "sanity --model " + model.string() + " --input " + images.string() +
                               " --method gradcam,saliency --batch 2 --smooth-mprt 2 --smooth-noise 0.2";
    auto whole = test::run_sightline(common + " --seed 3 --out " + (root / "whole").string());
    ASSERT_EQ(whole.exit_code, 0) << whole.err;
    std::string shards;
    for (int i = 0; i < 2; ++i) {
        const fs::path out = root / ("shard" + std::to_string(i));
        auto r = test::run_sightline(common + " --seed 3 --shard " + std::to_string(i) + "/2 --out " + out.string());
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(r.out.find("shard " + std::to_string(i) + "/2: " + (i == 0 ? "3" : "2") + " of 5 image(s)"),
                  std::string::npos)
            << r.out;
        shards += " " + out.string();
    }
    EXPECT_EQ(json_file(root / "shard0" / "sanity.json")["shard"]["image_indices"],
              nlohmann::json::array({0, 1, 4}));

    // Shards in any order; the merged files are the single run's.
    auto merged = test::run_sightline("merge " + (root / "shard1").string() + " " + (root / "shard0").string() +
                                      " --out " + (root / "merged").string());
    ASSERT_EQ(merged.exit_code, 0) << merged.err;
    const nlohmann::json single = json_file(root / "whole" / "sanity.json");
    const nlohmann::json joined = json_file(root / "merged" / "sanity.json");
    EXPECT_EQ(json_without_seconds(joined).dump(1), json_without_seconds(single).dump(1));
    ASSERT_TRUE(single.contains("random_targets"));  // the random-logit draws were compared too
    EXPECT_EQ(read_file(root / "merged" / "sanity_curves.svg"), read_file(root / "whole" / "sanity_curves.svg"));
    EXPECT_EQ(read_file(root / "merged" / "sanity.png"), read_file(root / "whole" / "sanity.png"));
    // The printed table and verdicts too.
    EXPECT_EQ(printed_table(merged.out), printed_table(whole.out));
    EXPECT_NE(printed_table(whole.out).find("verdicts"), std::string::npos) << whole.out;
    EXPECT_NEAR(joined["seconds"].get<double>(),
                json_file(root / "shard0" / "sanity.json")["seconds"].get<double>() +
                    json_file(root / "shard1" / "sanity.json")["seconds"].get<double>(),
                1e-9);

    // A shard of another job (another seed), a missing shard: one line, nothing written.
    const fs::path other = root / "other";
    ASSERT_EQ(test::run_sightline(common + " --seed 4 --shard 1/2 --out " + other.string()).exit_code, 0);
    auto foreign = test::run_sightline("merge " + (root / "shard0").string() + " " + other.string() + " --out " +
                                       (root / "bad").string());
    EXPECT_EQ(foreign.exit_code, 1);
    EXPECT_EQ(foreign.err, "sightline: error: " + other.string() + ": a shard of another job than " +
                               (root / "shard0").string() +
                               " (model, inputs, methods, steps, rule and options must match)\n");
    auto missing = test::run_sightline("merge " + (root / "shard0").string() + " --out " + (root / "bad").string());
    EXPECT_EQ(missing.err, "sightline: error: merge: shard 1/2 is missing (give all 2 output folders)\n");
    EXPECT_FALSE(fs::exists(root / "bad"));
}

TEST(SanityShards, AShardWithoutImagesIsOneLineAndWritesNothing) {
    const fs::path root = test::scratch_dir("sanity_empty_shard");
    const fs::path model = shard_toy_model(root), images = shard_toy_images(root / "images", 4);
    auto r = test::run_sightline("sanity --model " + model.string() + " --input " + images.string() +
                                 " --batch 2 --shard 2/3 --out " + (root / "out").string());
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err, "sightline: error: --shard 2/3: this shard gets no images: the 4 inputs make only 2 block(s) of "
                     "--batch 2; use fewer shards or a smaller --batch\n");
    EXPECT_FALSE(fs::exists(root / "out"));
}
