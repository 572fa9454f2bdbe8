// The sightline command line. The only place that catches: the library throws, main turns
// the exception into one line on stderr and an exit code (2 usage, 1 everything else).
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>
#include <fmt/format.h>

#include "commands.hpp"
#include "sightline/core.hpp"
#include "validators.hpp"
#include "sightline/image_limits.hpp"

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

// The image pixel limit (sightline/image_limits.hpp) from SIGHTLINE_MAX_PIXELS. (OpenCV's own
// OPENCV_IO_MAX_IMAGE_PIXELS is read when its library loads, before main: setting it here would
// do nothing; the limit is checked on the headers Sightline reads and on every decoded image.)
void configure_pixel_limit() {
    if (const char* text = std::getenv("SIGHTLINE_MAX_PIXELS")) {
        char* end = nullptr;
        const long long pixels = std::strtoll(text, &end, 10);
        if (!*text || *end || pixels < 1)
            throw sightline::UsageError(
                fmt::format("SIGHTLINE_MAX_PIXELS={}: expected a positive whole number of pixels", text));
        sightline::set_max_image_pixels(pixels);
    }
}

// One line whatever the exception says (LibTorch and TorchScript messages span many lines;
// the first says what went wrong).
int report_error(const std::string& message, int code) {
    std::string line = message.substr(0, message.find('\n'));
    std::cerr << "sightline: error: " << line << "\n";
    return code;
}

// The leading words that should name commands, checked level by level (CLI11 would say only
// "A subcommand is required"): a word that is not a command of its level, or a missing command,
// as one line naming the choices. Empty when the words are commands, or a flag comes first.
std::string unknown_command(CLI::App& app, int argc, char** argv) {
    CLI::App* level = &app;
    std::string path;
    for (int i = 1;; ++i) {
        const auto subs = level->get_subcommands([](CLI::App*) { return true; });
        if (subs.empty()) return "";
        std::string names;
        CLI::App* next = nullptr;
        for (CLI::App* sub : subs) {
            names += (names.empty() ? "" : ", ") + sub->get_name();
            if (i < argc && sub->get_name() == argv[i]) next = sub;
        }
        if (i >= argc) {
            if (level->get_require_subcommand_min() == 0) return "";
            return path.empty() ? fmt::format("give a command: {}", names)
                                : fmt::format("{}: give a command: {}", path, names);
        }
        if (argv[i][0] == '-' || argv[i][0] == '\0') return "";
        if (!next) return fmt::format("{}{}: unknown command; choose from {}", path.empty() ? "" : path + " ", argv[i], names);
        path += (path.empty() ? "" : " ") + std::string(argv[i]);
        level = next;
    }
}

}  // namespace

int main(int argc, char** argv) {
    prefer_passive_openmp_when_busy(argv);
    configure_allocator();
    CLI::App app{"Sightline: explain convolutional networks and segment images with them"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "sightline 0.1.0");
    app.set_help_all_flag("--help-all", "Print the help of every command and exit");
    sightline::cli::add_all_commands(app);
    sightline::cli::add_device_options(app);
    sightline::cli::add_common_checks(app);
    try {
        configure_pixel_limit();
        const std::string unknown = unknown_command(app, argc, argv);
        if (!unknown.empty()) return report_error(unknown, 2);
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // --help and --version are "errors" with code 0; every real misuse exits 2 (README, "Conventions").
        if (e.get_exit_code() == 0) return app.exit(e);
        return report_error(sightline::cli::one_line(e.what()), 2);
    } catch (const sightline::Error& e) {
        return report_error(e.what(), e.exit_code());
    } catch (const c10::Error& e) {
        return report_error(e.what_without_backtrace(), 1);
    } catch (const std::bad_alloc&) {
        return report_error("out of memory", 1);
    } catch (const std::exception& e) {
        return report_error(e.what(), 1);
    }
    return 0;
}
