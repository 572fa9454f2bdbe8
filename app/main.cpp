// The sightline command line. The only place that catches: the library throws, main turns
// the exception into one line on stderr and an exit code (2 usage, 1 everything else).
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
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

// LibTorch's OpenMP threads spin at every barrier by default. That is the fastest choice on
// idle cores, but when the machine is already busy the spinning threads take the cores from
// the threads doing the work (a U-Net epoch: 12 s idle, 167 s beside two busy processes, 38 s
// with passive waiting, which costs 1.5x on idle cores). libgomp reads OMP_WAIT_POLICY when it
// is loaded, before main, so on a busy machine the process restarts itself once with the
// passive policy. A policy or spin count the user set is kept.
// Busy: on average over five samples 10 ms apart, at least half as many other runnable tasks
// as cores (the "running" count of /proc/loadavg, which is instantaneous, unlike the load
// average, which still counts a build that has just finished).
bool machine_is_busy() {
    const long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores <= 0) return false;
    double others = 0;
    for (int sample = 0; sample < 5; ++sample) {
        if (sample > 0) usleep(10000);
        std::FILE* f = std::fopen("/proc/loadavg", "r");
        if (!f) return false;
        double l1, l5, l15;
        long running = 0, total = 0;
        const bool read = std::fscanf(f, "%lf %lf %lf %ld/%ld", &l1, &l5, &l15, &running, &total) == 5;
        std::fclose(f);
        if (!read) return false;
        others += static_cast<double>(running - 1) / 5;  // minus ourselves
    }
    return others >= 0.5 * static_cast<double>(cores);
}

void prefer_passive_openmp_when_busy(char** argv) {
    if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT") || !machine_is_busy()) return;
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv);  // returns only if the restart failed: run as we are
}

}  // namespace

int main(int argc, char** argv) {
    prefer_passive_openmp_when_busy(argv);
    configure_allocator();
    CLI::App app{"Sightline: explain convolutional networks and segment images with them"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "sightline 0.1.0");
    sightline::cli::add_all_commands(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // --help and --version are "errors" with code 0; every real misuse exits 2 (README, "Conventions").
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
