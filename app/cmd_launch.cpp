// sightline launch --nproc N -- COMMAND...: N processes of COMMAND on this machine with
// torchrun's environment (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), for
// data-parallel training (docs/distributed.md). The first process to fail stops the others.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "commands.hpp"
#include "sightline/core.hpp"

namespace sightline::cli {

namespace {

struct LaunchFlags {
    int nproc = 2;
    int port = 0;             // 0: a free port
    int threads = 0;          // OMP_NUM_THREADS per process; 0: cores / nproc (at least 1)
    std::vector<std::string> command;
};

// A port nobody listens on now: the kernel's choice for a socket bound to port 0.
int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw Error("launch: cannot open a socket to find a free port");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    socklen_t size = sizeof(address);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
        ::close(fd);
        throw Error("launch: cannot find a free port on 127.0.0.1 (give one with --master-port)");
    }
    ::close(fd);
    return ntohs(address.sin_port);
}

// `sightline ...` runs this very binary, whatever PATH says.
std::string program_of(const std::string& word) {
    if (word != "sightline") return word;
    std::vector<char> path(4096);
    const ssize_t n = ::readlink("/proc/self/exe", path.data(), path.size() - 1);
    return n > 0 ? std::string(path.data(), static_cast<std::size_t>(n)) : word;
}

pid_t start_rank(const LaunchFlags& f, int rank, int port, int threads) {
    const pid_t pid = ::fork();
    if (pid < 0) throw Error(fmt::format("launch: cannot start process {} ({})", rank, std::strerror(errno)));
    if (pid > 0) return pid;
    ::setenv("RANK", std::to_string(rank).c_str(), 1);
    ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
    ::setenv("WORLD_SIZE", std::to_string(f.nproc).c_str(), 1);
    ::setenv("LOCAL_WORLD_SIZE", std::to_string(f.nproc).c_str(), 1);
    ::setenv("MASTER_ADDR", "127.0.0.1", 1);
    ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
    ::setenv("OMP_NUM_THREADS", std::to_string(threads).c_str(), 1);
    std::vector<std::string> words = f.command;
    words[0] = program_of(words[0]);
    std::vector<char*> argv;
    for (std::string& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    std::fprintf(stderr, "sightline: error: launch: cannot run '%s': %s\n", f.command[0].c_str(), std::strerror(errno));
    std::_Exit(127);
}

int exit_code_of(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 1;
}

void run(const LaunchFlags& f) {
    if (f.command.empty())
        throw UsageError("launch: no command; give it after --, e.g. sightline launch --nproc 2 -- sightline train "
                         "classify ...");
    const int port = f.port > 0 ? f.port : free_port();
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    int threads = f.threads;
    if (threads == 0) {
        const char* set = std::getenv("OMP_NUM_THREADS");
        threads = set && std::atoi(set) > 0 ? std::atoi(set) : std::max(1, cores / f.nproc);
    }
    // Ctrl-C reaches every process of the terminal's group: the ranks save their checkpoint and
    // stop together; the launcher only waits for them.
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    struct sigaction old_int {}, old_term {};
    ::sigaction(SIGINT, &ignore, &old_int);
    ::sigaction(SIGTERM, &ignore, &old_term);

    std::vector<pid_t> ranks;
    for (int r = 0; r < f.nproc; ++r) ranks.push_back(start_rank(f, r, port, threads));
    int first_failure = 0, failed_rank = -1, running = f.nproc;
    auto deadline = std::chrono::steady_clock::time_point::max();
    while (running > 0) {
        int status = 0;
        const pid_t pid = ::waitpid(-1, &status, deadline == std::chrono::steady_clock::time_point::max() ? 0 : WNOHANG);
        if (pid == 0) {
            if (std::chrono::steady_clock::now() > deadline)
                for (pid_t p : ranks)
                    if (p > 0) ::kill(p, SIGKILL);
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            continue;
        }
        if (pid < 0) break;
        for (int r = 0; r < f.nproc; ++r) {
            if (ranks[r] != pid) continue;
            ranks[r] = -1;
            --running;
            const int code = exit_code_of(status);
            if (code != 0 && failed_rank < 0) {
                first_failure = code, failed_rank = r;
                // The others would fail at their next collective anyway; stop them now, and
                // kill what is still there after 30 s.
                for (pid_t p : ranks)
                    if (p > 0) ::kill(p, SIGTERM);
                deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
            }
        }
    }
    ::sigaction(SIGINT, &old_int, nullptr);
    ::sigaction(SIGTERM, &old_term, nullptr);
    if (failed_rank >= 0)
        throw Error(fmt::format("launch: process {} of {} failed with exit code {}; the others were stopped",
                                failed_rank, f.nproc, first_failure),
                    first_failure);
}

}  // namespace

void add_launch_command(CLI::App& app) {
    auto f = std::make_shared<LaunchFlags>();
    CLI::App* cmd = app.add_subcommand(
        "launch", "Run a command as N data-parallel processes on this machine, with torchrun's environment "
                  "(e.g. sightline launch --nproc 2 -- sightline train classify ...)");
    cmd->add_option("--nproc", f->nproc, "Processes (ranks)")->check(CLI::Range(1, 256))->capture_default_str();
    cmd->add_option("--master-port", f->port, "TCP port of rank 0's store on 127.0.0.1 (0: a free one)")
        ->check(CLI::Range(0, 65535))
        ->capture_default_str();
    cmd->add_option("--threads", f->threads, "OMP_NUM_THREADS of each process (0: cores / nproc, at least 1)")
        ->check(CLI::Range(0, 1024))
        ->capture_default_str();
    cmd->add_option("command", f->command, "The command each process runs (after --)");
    cmd->callback([f] { run(*f); });
}

}  // namespace sightline::cli
