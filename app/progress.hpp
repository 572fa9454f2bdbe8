// A one-line progress bar on stderr when it is a terminal; silent when piped.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace sightline::cli {

class ProgressBar {
public:
    ProgressBar(std::size_t total, std::string label)
        : total_(total), label_(std::move(label)), enabled_(::isatty(2) != 0),
          start_(std::chrono::steady_clock::now()) {}
    ~ProgressBar() { finish(); }

    void advance(std::size_t n = 1) {
        done_ += n;
        if (!enabled_) return;
        const int width = 30;
        double fraction = total_ ? double(done_) / double(total_) : 1.0;
        int filled = static_cast<int>(fraction * width);
        double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        double eta = done_ ? elapsed * (double(total_) - double(done_)) / double(done_) : 0.0;
        std::fprintf(stderr, "\r%s [%s%s] %zu/%zu  %.0fs left ", label_.c_str(),
                     std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(), done_,
                     total_, eta);
        std::fflush(stderr);
        drawn_ = true;
    }
    // Ends the bar's line so that a message can be printed; the next advance draws it again below.
    void break_line() {
        if (drawn_) std::fprintf(stderr, "\n");
        drawn_ = false;
    }
    void finish() {
        if (!finished_) break_line();
        finished_ = true;
    }

private:
    std::size_t total_, done_ = 0;
    std::string label_;
    bool enabled_, finished_ = false, drawn_ = false;
    std::chrono::steady_clock::time_point start_;
};

}  // namespace sightline::cli
