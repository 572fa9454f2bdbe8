// What the two halves of the extension module share: the error for bad arguments and the
// registration of the measures (crf, evaluate, coco_eval).
#pragma once

#include <stdexcept>
#include <string>

#include <pybind11/pybind11.h>

#include "sightline/core.hpp"

namespace sightline::python {

// A bad argument found by the module: ValueError in Python, like sightline::UsageError.
// Library errors (sightline::Error) raised while arguments are checked become one too.
class BadInput : public std::runtime_error {
public:
    explicit BadInput(const std::string& message) : std::runtime_error(message) {}
};

// Runs `check` and turns a sightline::Error it throws into BadInput (same message).
template <typename F>
auto checking_input(F&& check) -> decltype(check()) {
    try {
        return check();
    } catch (const UsageError&) {
        throw;
    } catch (const Error& e) {
        throw BadInput(e.what());
    }
}

void bind_measures(pybind11::module_& m);

}  // namespace sightline::python
