// Reader and writer for NumPy's .npy format (format description: numpy.lib.format).
#include <cstring>
#include <fstream>
#include <regex>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "sightline/core.hpp"

namespace sightline {

namespace {

const char kMagic[] = "\x93NUMPY";

std::size_t dtype_size(const std::string& dtype, const fs::path& path) {
    if (dtype == "f4" || dtype == "i4" || dtype == "u4") return 4;
    if (dtype == "f8" || dtype == "i8" || dtype == "u8") return 8;
    if (dtype == "u1" || dtype == "i1" || dtype == "b1") return 1;
    if (dtype == "f2" || dtype == "i2" || dtype == "u2") return 2;
    throw Error(fmt::format("{}: unsupported .npy dtype '{}'", path.string(), dtype));
}

// Parses the Python dict literal of the header, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }
void parse_header(const std::string& header, const fs::path& path, NpyArray& out) {
    std::smatch m;
    static const std::regex descr_re(R"('descr'\s*:\s*'([<>|=])([a-z]\d+)')");
    static const std::regex fortran_re(R"('fortran_order'\s*:\s*(True|False))");
    static const std::regex shape_re(R"('shape'\s*:\s*\(([^)]*)\))");
    if (!std::regex_search(header, m, descr_re))
        throw Error(fmt::format("{}: .npy header has no dtype", path.string()));
    if (m[1] == ">") throw Error(fmt::format("{}: big-endian .npy is not supported", path.string()));
    out.dtype = m[2];
    if (!std::regex_search(header, m, fortran_re))
        throw Error(fmt::format("{}: .npy header has no fortran_order", path.string()));
    if (m[1] == "True")
        throw Error(fmt::format("{}: Fortran-ordered .npy is not supported", path.string()));
    if (!std::regex_search(header, m, shape_re))
        throw Error(fmt::format("{}: .npy header has no shape", path.string()));
    std::string dims = m[1];
    static const std::regex num_re(R"(\d+)");
    for (auto it = std::sregex_iterator(dims.begin(), dims.end(), num_re);
         it != std::sregex_iterator(); ++it) {
        if (it->str().size() > 18)
            throw Error(fmt::format("{}: .npy header declares an impossible dimension {}", path.string(), it->str()));
        out.shape.push_back(std::stoll(it->str()));
    }
}

// The data size the header declares, or an Error when it exceeds the bytes the file holds
// (checked before allocating: a 200-byte file may declare terabytes).
std::size_t declared_bytes(const NpyArray& a, const fs::path& path, uint64_t available) {
    uint64_t bytes = dtype_size(a.dtype, path);
    for (int64_t d : a.shape) {
        if (d != 0 && bytes > available / static_cast<uint64_t>(d)) bytes = available + 1;  // stop before overflow
        else bytes *= static_cast<uint64_t>(d);
    }
    if (bytes > available)
        throw Error(fmt::format("{}: truncated .npy data (the header declares shape [{}], more than the {} "
                                "bytes after the header)",
                                path.string(), fmt::join(a.shape, ","), available));
    return static_cast<std::size_t>(bytes);
}

}  // namespace

int64_t NpyArray::numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

std::size_t NpyArray::item_size() const { return dtype_size(dtype, "<array>"); }

std::vector<float> NpyArray::to_float() const {
    std::vector<float> out(static_cast<std::size_t>(numel()));
    auto convert = [&](auto tag) {
        using T = decltype(tag);
        const T* src = reinterpret_cast<const T*>(bytes.data());
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(src[i]);
    };
    if (dtype == "f4") std::memcpy(out.data(), bytes.data(), out.size() * 4);
    else if (dtype == "f8") convert(double{});
    else if (dtype == "u1") convert(uint8_t{});
    else if (dtype == "i4") convert(int32_t{});
    else if (dtype == "i8") convert(int64_t{});
    else throw Error(fmt::format("cannot convert .npy dtype '{}' to float32", dtype));
    return out;
}

NpyArray read_npy(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(fmt::format("{}: cannot open file", path.string()));
    char magic[6];
    unsigned char version[2];
    if (!in.read(magic, 6) || std::memcmp(magic, kMagic, 6) != 0)
        throw Error(fmt::format("{}: not a .npy file (bad magic)", path.string()));
    if (!in.read(reinterpret_cast<char*>(version), 2))
        throw Error(fmt::format("{}: truncated .npy header", path.string()));
    uint32_t header_len = 0;
    if (version[0] == 1) {
        unsigned char len[2];
        if (!in.read(reinterpret_cast<char*>(len), 2))
            throw Error(fmt::format("{}: truncated .npy header", path.string()));
        header_len = len[0] | (len[1] << 8);
    } else if (version[0] == 2 || version[0] == 3) {
        unsigned char len[4];
        if (!in.read(reinterpret_cast<char*>(len), 4))
            throw Error(fmt::format("{}: truncated .npy header", path.string()));
        header_len = len[0] | (len[1] << 8) | (len[2] << 16) | (uint32_t(len[3]) << 24);
    } else {
        throw Error(fmt::format("{}: unsupported .npy version {}", path.string(), version[0]));
    }
    std::error_code size_ec;
    const uint64_t file_size = fs::file_size(path, size_ec);
    if (size_ec || header_len > file_size - static_cast<uint64_t>(in.tellg()))
        throw Error(fmt::format("{}: truncated .npy header", path.string()));
    std::string header(header_len, '\0');
    if (!in.read(header.data(), header_len))
        throw Error(fmt::format("{}: truncated .npy header", path.string()));
    NpyArray out;
    parse_header(header, path, out);
    const uint64_t data_start = static_cast<uint64_t>(in.tellg());
    const std::size_t expected = declared_bytes(out, path, file_size < data_start ? 0 : file_size - data_start);
    out.bytes.resize(expected);
    if (expected > 0 && !in.read(out.bytes.data(), static_cast<std::streamsize>(expected)))
        throw Error(fmt::format("{}: truncated .npy data (expected {} bytes, got {})",
                                path.string(), expected, in.gcount()));
    return out;
}

void write_npy(const fs::path& path, const NpyArray& array) {
    std::string shape;
    for (std::size_t i = 0; i < array.shape.size(); ++i)
        shape += fmt::format("{}{}", i ? ", " : "", array.shape[i]);
    if (array.shape.size() == 1) shape += ",";  // Python's one-element tuple
    std::string byte_order = dtype_size(array.dtype, path) == 1 ? "|" : "<";
    std::string header = fmt::format("{{'descr': '{}{}', 'fortran_order': False, 'shape': ({}), }}",
                                     byte_order, array.dtype, shape);
    // Pad so that magic + version + length + header is a multiple of 64 bytes, ending in \n.
    std::size_t total = 10 + header.size() + 1;
    header.append((64 - total % 64) % 64, ' ');
    header.push_back('\n');
    std::string bytes(kMagic, 6);
    bytes.push_back('\x01');
    bytes.push_back('\x00');
    bytes.push_back(static_cast<char>(header.size() & 0xff));
    bytes.push_back(static_cast<char>((header.size() >> 8) & 0xff));
    bytes += header;
    bytes.append(array.bytes.data(), array.bytes.size());
    write_file_atomic(path, bytes);
}

void write_npy_f32(const fs::path& path, const std::vector<int64_t>& shape, const float* data) {
    NpyArray a;
    a.dtype = "f4";
    a.shape = shape;
    a.bytes.assign(reinterpret_cast<const char*>(data),
                   reinterpret_cast<const char*>(data) + a.numel() * 4);
    write_npy(path, a);
}

}  // namespace sightline
