// Finds and dlopens torchvision's op library once (see sightline/torchvision_ops.hpp).
#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

#include <ATen/core/dispatch/Dispatcher.h>
#include <fmt/format.h>

#include "sightline/core.hpp"
#include "sightline/torchvision_ops.hpp"

#ifndef SIGHTLINE_TORCHVISION_OPS_DEFAULT
#define SIGHTLINE_TORCHVISION_OPS_DEFAULT ""  // CMake found no torchvision/_C*.so
#endif

namespace sightline {

namespace {

constexpr const char* kPathVariable = "SIGHTLINE_TORCHVISION_OPS";

Error load_error(const std::string& path, const std::string& reason) {
    return Error(fmt::format("{}: cannot load torchvision's op library ({}); install Debian's python3-torchvision "
                             "or set {} to its torchvision/_C*.so",
                             path.empty() ? "(no path)" : path, reason, kPathVariable));
}

bool registered(const char* op) {
    return c10::Dispatcher::singleton().findSchema({op, ""}).has_value();
}

}  // namespace

std::string torchvision_ops_path() {
    const char* from_env = std::getenv(kPathVariable);
    if (from_env && *from_env) return from_env;
    return SIGHTLINE_TORCHVISION_OPS_DEFAULT;
}

void load_torchvision_ops(const std::string& path) {
    if (path.empty()) throw load_error(path, "no torchvision/_C*.so was found when Sightline was configured");
    // RTLD_GLOBAL: the library's static TORCH_LIBRARY blocks register into this process's
    // dispatcher; the handle is kept for the process's life (the registrations live in it).
    if (!dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL)) {
        const char* reason = dlerror();
        throw load_error(path, reason ? reason : "dlopen failed");
    }
    for (const char* op : {"torchvision::roi_align", "torchvision::nms"})
        if (!registered(op)) throw load_error(path, fmt::format("it does not register {}", op));
}

void ensure_torchvision_ops() {
    static std::once_flag once;
    static std::string first_error;
    std::call_once(once, [] {
        try {
            load_torchvision_ops(torchvision_ops_path());
        } catch (const Error& e) {
            first_error = e.what();
        }
    });
    if (!first_error.empty()) throw Error(first_error);
}

}  // namespace sightline
