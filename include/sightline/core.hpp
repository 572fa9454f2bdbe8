// Core: errors, .npy arrays, atomic files and image reading shared by every area.
// Nothing here depends on LibTorch; tensor conversions live in sightline/tensor_io.hpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace sightline {

namespace fs = std::filesystem;

// Every failure the library reports. main() prints what() as one line and exits with
// exit_code(): 2 for misuse of the command line, 1 for everything else.
class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message, int exit_code = 1)
        : std::runtime_error(message), exit_code_(exit_code) {}
    int exit_code() const { return exit_code_; }

private:
    int exit_code_;
};

// Wrong use of an option or argument: exit code 2.
class UsageError : public Error {
public:
    explicit UsageError(const std::string& message) : Error(message, 2) {}
};

// ---- .npy (NumPy format 1.0/2.0/3.0, little-endian, C order) ----------------------------

// dtype is the NumPy type string without byte order: "f4", "f8", "u1", "i4", "i8", "b1".
struct NpyArray {
    std::string dtype;
    std::vector<int64_t> shape;
    std::vector<char> bytes;  // element data, C order

    int64_t numel() const;
    std::size_t item_size() const;
    // A copy of the data as float32 (converts f8 / u1 / i4 / i8); throws for other types.
    std::vector<float> to_float() const;
};

// Throws Error naming the file for a missing, truncated or malformed file.
NpyArray read_npy(const fs::path& path);
// Writes atomically (temp file + rename).
void write_npy(const fs::path& path, const NpyArray& array);
void write_npy_f32(const fs::path& path, const std::vector<int64_t>& shape, const float* data);

// ---- atomic files -------------------------------------------------------------------------

// Write the bytes to `path` through a temp file in the same folder and a rename, so a reader
// sees either the old file or the complete new one, never a half-written one.
void write_file_atomic(const fs::path& path, const std::string& bytes);
void write_file_atomic(const fs::path& path, const void* data, std::size_t size);
std::string read_file(const fs::path& path);
// The non-empty lines of a text file, trailing spaces and '\r' removed (class lists, split files).
std::vector<std::string> read_text_lines(const fs::path& path);
// Creates the folder (and parents) and checks that a file can be written there.
void ensure_writable_dir(const fs::path& dir);

// ---- images -------------------------------------------------------------------------------

struct LoadedImage {
    cv::Mat rgb;            // CV_8UC3, RGB order
    int source_channels;    // 1, 3 or 4 as stored in the file
};

// Reads PNG / JPEG / BMP / TIFF with OpenCV. Grey and RGBA images are converted to RGB
// (source_channels says what was stored). Throws Error naming the file when it is missing,
// empty or cannot be decoded.
LoadedImage read_image_rgb(const fs::path& path);
// Decodes PNG bytes to RGB with libpng, silently (errors become Error naming `name`).
// source_channels: 1 grey, 2 grey+alpha, 3 colour, 4 colour+alpha, as stored.
cv::Mat decode_png_rgb(const std::string& bytes, const std::string& name, int* source_channels);
// Encodes by the file extension (png, jpg, ...) and writes atomically. `rgb` is RGB order.
void write_image_rgb(const fs::path& path, const cv::Mat& rgb);

// True for the extensions read_image_rgb accepts.
bool is_image_file(const fs::path& path);
// The input files of a command: one file, or the sorted image (and .npy) files of a folder.
std::vector<fs::path> list_inputs(const fs::path& file_or_dir, bool accept_npy);

}  // namespace sightline
