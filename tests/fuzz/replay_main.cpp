// The main() of a fuzz harness in a normal build: runs LLVMFuzzerTestOneInput on every file of
// the folders (or files) given, as libFuzzer would replay a corpus, so the harnesses and the
// parsers they drive are compiled and exercised without clang (ctest Fuzz.<harness>). A
// harness aborts on a broken invariant; an escaping exception is a failure too.
#include <algorithm>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size);

namespace fs = std::filesystem;

int main(int argc, char** argv) {
    std::vector<fs::path> inputs;
    for (int i = 1; i < argc; ++i) {
        const fs::path arg = argv[i];
        if (fs::is_directory(arg)) {
            for (const auto& e : fs::directory_iterator(arg))
                if (e.is_regular_file()) inputs.push_back(e.path());
        } else if (fs::is_regular_file(arg)) {
            inputs.push_back(arg);
        } else {
            std::cerr << arg.string() << ": no such corpus file or folder\n";
            return 1;
        }
    }
    std::sort(inputs.begin(), inputs.end());  // the same order on every machine
    if (inputs.empty()) {
        std::cerr << "no corpus inputs given\n";
        return 1;
    }
    for (const fs::path& p : inputs) {
        std::ifstream in(p, std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        try {
            LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
        } catch (const std::exception& e) {
            std::cerr << p.string() << ": escaped the harness: " << e.what() << "\n";
            return 1;
        }
    }
    std::cout << "replayed " << inputs.size() << " input(s)\n";
    return 0;
}
