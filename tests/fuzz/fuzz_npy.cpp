// read_npy on arbitrary bytes: an Error or an array whose data matches its declared shape,
// never a crash, a hang or an allocation beyond the file's size.
#include <cstdlib>

#include "fuzz_support.hpp"
#include "sightline/core.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    const auto path = sightline::fuzz::scratch("input.npy");
    sightline::fuzz::write(path, data, size);
    try {
        sightline::NpyArray a = sightline::read_npy(path);
        if (a.bytes.size() != static_cast<std::size_t>(a.numel()) * a.item_size()) std::abort();
        if (a.dtype == "f4" || a.dtype == "f8" || a.dtype == "u1" || a.dtype == "i4" || a.dtype == "i8")
            (void)a.to_float();
    } catch (const sightline::Error&) {
    }
    return 0;
}
