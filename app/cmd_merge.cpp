// sightline merge: the output folders of `explain`, `audit` or `sanity --shard I/N` runs
// joined into one, equal to a single run's output (docs/distributed.md).
#include <iostream>

#include <fmt/format.h>

#include "commands.hpp"
#include "sightline/audit.hpp"
#include "sightline/explain_job.hpp"
#include "sightline/sanity.hpp"

namespace sightline::cli {

namespace {

struct MergeFlags {
    std::vector<fs::path> shards;
    fs::path out;
};

void run(const MergeFlags& f) {
    if (fs::exists(f.out) && !fs::is_empty(f.out))
        throw Error(fmt::format("{}: exists and is not empty; merge into a new folder", f.out.string()));
    if (!f.shards.empty() && fs::exists(f.shards.front() / "audit.json")) {
        const AuditResult result = merge_audit_shards(f.shards);
        write_audit_outputs(f.out, result);
        std::cout << format_audit_table(result);
        std::cout << fmt::format("merged {} audit shard(s): {} image(s) -> {}/{{audit.json,audit.csv,"
                                 "audit_records.csv}}\n",
                                 f.shards.size(), result.images, f.out.string());
        return;
    }
    if (!f.shards.empty() && fs::exists(f.shards.front() / "sanity.json")) {
        fs::path first;
        const SanityReport report = merge_sanity_shards(f.shards, &first);
        // Shard 0 holds the run's first image, the one sanity.png shows; every shard has the same
        // preprocessing (the merge checked it).
        const fs::path picture = first / "sanity.png";
        if (!fs::exists(picture)) throw Error(fmt::format("{}: missing (shard 0's picture)", picture.string()));
        const nlohmann::json preprocessing = nlohmann::json::parse(read_file(first / "sanity.json"))["preprocessing"];
        write_sanity_outputs(report, preprocessing, f.out, picture);
        std::cout << sanity_table(report);
        std::cout << fmt::format("merged {} sanity shard(s): {} image(s) -> {}/{{sanity.json,sanity.png,"
                                 "sanity_curves.svg}}\n",
                                 f.shards.size(), report.images.size(), f.out.string());
        return;
    }
    const nlohmann::json summary = merge_explain_shards(f.shards, f.out);
    std::cout << fmt::format("merged {} shard(s): {} input(s), {} map(s) -> {}\n", f.shards.size(),
                             summary["inputs"].get<std::size_t>(), summary["items"].size(),
                             (f.out / "summary.json").string());
}

}  // namespace

void add_merge_command(CLI::App& app) {
    auto f = std::make_shared<MergeFlags>();
    CLI::App* cmd = app.add_subcommand("merge", "Join the output folders of `explain`, `audit` or `sanity --shard I/N` runs into one");
    cmd->add_option("shards", f->shards, "the N shards' output folders")->required();
    cmd->add_option("--out", f->out, "output folder (new or empty)")->required();
    cmd->callback([f] { run(*f); });
}

}  // namespace sightline::cli
