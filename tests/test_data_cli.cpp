// `sightline data ...` through the built binary.
#include <gtest/gtest.h>

#include "sightline/data.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace {

bool have_binary() { return fs::exists(SIGHTLINE_BINARY); }

}  // namespace

TEST(DataCli, SynthWritesTheDatasetAndASummary) {
    ASSERT_TRUE(have_binary()) << "the sightline binary is not built (cmake --build ... --target sightline_cli)";
    fs::path out = test::scratch_dir("synth");
    auto r = test::run_sightline("data synth --out " + out.string() + " --n 5 --size 32 --spurious 1 --seed 3");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("wrote 11 images to " + out.string()), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("train objects on their own context: 1.000"), std::string::npos) << r.out;
    EXPECT_EQ(r.err, "");  // no progress bar when stderr is not a terminal
    EXPECT_EQ(open_dataset(out, "train")->size(), 5u);
    EXPECT_EQ(open_dataset(out, "test_swapped")->size(), 1u);
}

TEST(DataCli, BadOptionsAndMissingSourceFailWithOneLine) {
    ASSERT_TRUE(have_binary()) << "the sightline binary is not built (cmake --build ... --target sightline_cli)";
    fs::path out = test::scratch_dir("bad");
    auto r = test::run_sightline("data synth --out " + out.string() + " --spurious 1.5");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err, "sightline: error: --spurious: must be between 0 and 1, got 1.5\n");
    fs::path empty = test::scratch_dir("empty");
    r = test::run_sightline("data fashion --out " + out.string() + " --source " + empty.string());
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, "sightline: error: " + (empty / "train-images-idx3-ubyte.gz").string() +
                         ": no such file (install Debian's dataset-fashion-mnist package)\n");
}
