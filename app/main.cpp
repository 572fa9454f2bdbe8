// The sightline command line. The only place that catches: the library throws, main turns
// the exception into one line on stderr and an exit code (2 usage, 1 everything else).
#include <malloc.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>

#include "commands.hpp"
#include "sightline/core.hpp"

namespace {

// glibc returns large blocks to the kernel after each use, so every batch page-faults its
// tensors in again (a ResNet-50 batch-8 forward: 720 ms instead of 280 ms). Keep them.
void configure_allocator() {
    if (std::getenv("SIGHTLINE_GLIBC_MALLOC")) return;  // for measuring the effect (bench)
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

// LibTorch's OpenMP threads spin at every barrier by default. That costs nothing on idle
// cores, but as soon as anything else runs (our own data loader, a second job) the spinning
// threads take the cores from the threads doing the work: a small training run went from 4 s
// to 36 s under load average 7. libgomp reads OMP_WAIT_POLICY when it is loaded, before main,
// so the process restarts itself once with the passive policy; a policy the user set is kept.
void prefer_passive_openmp(char** argv) {
    if (std::getenv("OMP_WAIT_POLICY")) return;
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv);  // returns only if the restart failed: run as we are
}

}  // namespace

int main(int argc, char** argv) {
    prefer_passive_openmp(argv);
    configure_allocator();
    CLI::App app{"Sightline: explain convolutional networks and segment images with them"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "sightline 0.1.0");
    sightline::cli::add_all_commands(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // --help and --version are "errors" with code 0; every real misuse exits 2 (README).
        const int code = app.exit(e);
        return code == 0 ? 0 : 2;
    } catch (const sightline::Error& e) {
        std::cerr << "sightline: error: " << e.what() << "\n";
        return e.exit_code();
    } catch (const c10::Error& e) {
        // LibTorch messages span several lines; the first one says what went wrong.
        std::string message = e.what_without_backtrace();
        std::cerr << "sightline: error: " << message.substr(0, message.find('\n')) << "\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "sightline: error: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
