#include "commands.hpp"

namespace sightline::cli {

void add_all_commands(CLI::App& app) {
    add_list_command(app);
    add_explain_command(app);
    add_inspect_command(app);
    add_bench_command(app);
    add_demo_command(app);
    add_data_command(app);
    add_eval_command(app);
    add_audit_command(app);
    add_crf_command(app);
    add_train_command(app);
    add_wsss_command(app);
    add_segment_command(app);
    add_instance_command(app);
    add_sanity_command(app);
    add_score_command(app);
    add_merge_command(app);
    add_launch_command(app);
}

}  // namespace sightline::cli
