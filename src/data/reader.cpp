// open_dataset: the PASCAL VOC layout and an image folder with labels.csv.
#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "layout.hpp"
#include "sightline/data.hpp"
#include "sightline/palette.hpp"

namespace sightline {

const std::vector<std::string>& voc_class_names() {
    static const std::vector<std::string> names = {
        "background", "aeroplane", "bicycle", "bird",  "boat",        "bottle", "bus",
        "car",        "cat",       "chair",   "cow",   "diningtable", "dog",    "horse",
        "motorbike",  "person",    "pottedplant", "sheep", "sofa",    "train",  "tvmonitor"};
    return names;
}

namespace {

std::string trim(const std::string& s) {
    const char* space = " \t\r\n";
    std::size_t a = s.find_first_not_of(space);
    if (a == std::string::npos) return "";
    return s.substr(a, s.find_last_not_of(space) - a + 1);
}

// Non-empty trimmed lines with their 1-based line numbers.
std::vector<std::pair<int, std::string>> read_lines(const fs::path& path) {
    std::string text = read_file(path);
    std::vector<std::pair<int, std::string>> lines;
    std::size_t start = 0;
    for (int number = 1; start <= text.size(); ++number) {
        std::size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        std::string line = trim(text.substr(start, end - start));
        if (!line.empty()) lines.emplace_back(number, line);
        start = end + 1;
    }
    return lines;
}

// Where the class list came from, for messages.
struct ClassList {
    std::vector<std::string> names;
    std::string source;
};

ClassList read_classes(const fs::path& path) {
    ClassList list{{}, path.string()};
    std::map<std::string, int> seen;
    for (const auto& [number, name] : read_lines(path)) {
        if (name.find_first_of(",;") != std::string::npos)
            throw Error(fmt::format("{}: line {}: class name '{}' contains ',' or ';'", path.string(), number, name));
        if (!seen.emplace(name, number).second)
            throw Error(fmt::format("{}: line {}: class '{}' already listed on line {}", path.string(), number, name,
                                    seen[name]));
        list.names.push_back(name);
    }
    if (list.names.size() < 2)
        throw Error(fmt::format("{}: expected background and at least one class, got {} name(s)", path.string(),
                                list.names.size()));
    if (list.names.size() > 255)
        throw Error(fmt::format("{}: {} classes do not fit 8-bit masks (at most 255 with 255 = ignore)",
                                path.string(), list.names.size()));
    return list;
}

// The class names of a labels.csv field: separated by ';', and within each part by spaces unless
// the whole part is a known name (a name may contain spaces).
std::vector<std::string> class_names_in(const std::string& field, const std::map<std::string, int>& known) {
    std::vector<std::string> names;
    std::size_t start = 0;
    while (start <= field.size()) {
        std::size_t end = field.find(';', start);
        if (end == std::string::npos) end = field.size();
        const std::string part = trim(field.substr(start, end - start));
        start = end + 1;
        if (part.empty()) continue;
        if (known.count(part)) {
            names.push_back(part);
            continue;
        }
        std::istringstream words(part);
        for (std::string word; words >> word;) names.push_back(word);
    }
    return names;
}

// labels.csv rows: image -> class ids. Names are looked up in `classes`; when `grow` is set,
// unknown names are appended instead (a folder without classes.txt).
std::map<std::string, std::vector<int>> read_labels_csv(const fs::path& path, ClassList& classes, bool grow,
                                                        std::vector<std::string>* order = nullptr) {
    auto lines = read_lines(path);
    const std::string header = lines.empty() ? "" : lines.front().second;
    std::string column;  // the second column's name, for messages
    for (const char* accepted : {"image,labels", "image,class", "image,classes"})
        if (header == accepted) column = std::string(accepted).substr(6);
    if (column.empty())
        throw Error(fmt::format("{}: the first line must be the header 'image,class' or 'image,labels' (columns: "
                                "image = file name or id; class/labels = one class name, or several separated by "
                                "spaces or ';'), got '{}'",
                                path.string(), header));
    std::map<std::string, int> index;
    for (std::size_t i = 0; i < classes.names.size(); ++i) index[classes.names[i]] = static_cast<int>(i);
    std::map<std::string, std::vector<int>> rows;
    for (std::size_t l = 1; l < lines.size(); ++l) {
        const auto& [number, line] = lines[l];
        std::size_t comma = line.find(',');
        if (comma == std::string::npos || line.find(',', comma + 1) != std::string::npos)
            throw Error(fmt::format("{}: line {}: expected 2 columns 'image,{}', got '{}'", path.string(), number,
                                    column, line));
        std::string image = trim(line.substr(0, comma)), field = line.substr(comma + 1);
        if (image.empty()) throw Error(fmt::format("{}: line {}: empty image name", path.string(), number));
        std::set<int> ids;
        for (const std::string& name : class_names_in(field, index)) {
            auto it = index.find(name);
            if (it == index.end() && grow && name != "background") {
                classes.names.push_back(name);
                it = index.emplace(name, static_cast<int>(classes.names.size()) - 1).first;
            }
            if (it == index.end() || it->second == 0)
                throw Error(fmt::format("{}: line {}: unknown class '{}' (object classes from {}: {})", path.string(),
                                        number, name, classes.source,
                                        fmt::join(classes.names.begin() + 1, classes.names.end(), ", ")));
            ids.insert(it->second);
        }
        if (!rows.emplace(image, std::vector<int>(ids.begin(), ids.end())).second)
            throw Error(fmt::format("{}: line {}: image '{}' listed twice", path.string(), number, image));
        if (order) order->push_back(image);
    }
    return rows;
}

// The first existing file among stem + each image extension.
fs::path find_image(const fs::path& stem) {
    for (const char* ext : {".jpg", ".png", ".jpeg", ".JPG", ".PNG", ".JPEG"}) {
        fs::path p = stem;
        p += ext;
        if (fs::exists(p)) return p;
    }
    return {};
}

std::vector<std::string> splits_in(const fs::path& dir) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
        if (e.path().extension() == ".txt") names.push_back(e.path().stem().string());
    std::sort(names.begin(), names.end());
    return names;
}

struct Entry {
    std::string id;
    fs::path image;
    fs::path mask;             // empty: no mask
    bool has_labels = false;   // else derived from the mask
    std::vector<int> labels;
};

class ListedDataset : public Dataset {
public:
    ListedDataset(std::vector<Entry> entries, ClassList classes)
        : entries_(std::move(entries)), classes_(std::move(classes)) {}

    std::size_t size() const override { return entries_.size(); }
    const std::vector<std::string>& class_names() const override { return classes_.names; }

    Sample get(std::size_t index) const override {
        if (index >= entries_.size())
            throw Error(fmt::format("sample {} requested from a dataset of {}", index, entries_.size()));
        const Entry& e = entries_[index];
        Sample s;
        s.id = e.id;
        s.image = read_image_rgb(e.image).rgb;
        s.image_path = e.image;
        if (!e.mask.empty()) {
            s.mask = read_index_png(e.mask);
            if (s.mask.size() != s.image.size())
                throw Error(fmt::format("{}: mask is {}x{} but its image {} is {}x{}", e.mask.string(), s.mask.cols,
                                        s.mask.rows, e.image.string(), s.image.cols, s.image.rows));
            const int classes = static_cast<int>(classes_.names.size());
            for (int id : detail::labels_in_mask(s.mask))
                if (id >= classes)
                    throw Error(fmt::format("{}: label id {} outside the class list (0..{} from {}; 255 = ignore)",
                                            e.mask.string(), id, classes - 1, classes_.source));
        }
        s.labels = e.has_labels ? e.labels : detail::labels_in_mask(s.mask);
        return s;
    }

private:
    std::vector<Entry> entries_;
    ClassList classes_;
};

std::unique_ptr<Dataset> open_voc(const fs::path& root, const std::string& split) {
    const bool is_file = fs::path(split).extension() == ".txt" && fs::is_regular_file(split);
    fs::path list = is_file ? fs::path(split) : root / detail::kSplits / (split + ".txt");
    if (!fs::exists(list))
        throw Error(fmt::format("{}: no such split file (splits here: {})", list.string(),
                                fmt::join(splits_in(root / detail::kSplits), ", ")));
    ClassList classes = fs::exists(root / "classes.txt")
                            ? read_classes(root / "classes.txt")
                            : ClassList{voc_class_names(), "the 21 PASCAL VOC classes (no classes.txt)"};
    std::map<std::string, std::vector<int>> labels;
    if (fs::exists(root / "labels.csv")) labels = read_labels_csv(root / "labels.csv", classes, false);
    for (auto it = labels.begin(); it != labels.end();) {  // "x.jpg" in labels.csv names the id "x"
        if (!is_image_file(it->first)) {
            ++it;
            continue;
        }
        auto node = labels.extract(it++);
        node.key() = fs::path(node.key()).stem().string();
        labels.insert(std::move(node));
    }
    const bool masks = fs::is_directory(root / detail::kClassMasks);
    std::vector<Entry> entries;
    for (const auto& [number, id] : read_lines(list)) {
        Entry e;
        e.id = id;
        e.image = find_image(root / detail::kImages / id);
        if (e.image.empty())
            throw Error(fmt::format("{}: no such image file (nor .png or .jpeg; listed in {} line {})",
                                    (root / detail::kImages / (id + ".jpg")).string(), list.string(), number));
        if (masks) {
            e.mask = root / detail::kClassMasks / (id + ".png");
            if (!fs::exists(e.mask))
                throw Error(fmt::format("{}: no such mask file (listed in {} line {})", e.mask.string(),
                                        list.string(), number));
        }
        auto it = labels.find(id);
        if (it != labels.end()) {
            e.has_labels = true;
            e.labels = it->second;
        } else if (!masks) {
            throw Error(fmt::format("{}: no labels for image '{}' and no {}/ to derive them from",
                                    (root / "labels.csv").string(), id, detail::kClassMasks));
        }
        entries.push_back(std::move(e));
    }
    if (entries.empty()) throw Error(fmt::format("{}: split lists no images", list.string()));
    return std::make_unique<ListedDataset>(std::move(entries), std::move(classes));
}

std::unique_ptr<Dataset> open_folder(const fs::path& root, const std::string& split) {
    const bool whole = split.empty() || split == "all";
    fs::path dir = whole ? root : root / split;
    fs::path csv = dir / "labels.csv";
    if (!fs::exists(csv))
        throw Error(fmt::format("{}: no such file (a dataset root holds {}/ or an image folder with labels.csv)",
                                csv.string(), detail::kSplits));
    ClassList classes;
    bool grow = false;
    if (fs::exists(dir / "classes.txt")) classes = read_classes(dir / "classes.txt");
    else if (fs::exists(root / "classes.txt")) classes = read_classes(root / "classes.txt");
    else {
        classes = ClassList{{"background"}, "labels.csv (no classes.txt)"};
        grow = true;
    }
    std::vector<std::string> order;
    auto rows = read_labels_csv(csv, classes, grow, &order);
    if (grow) {
        // Sorted names, so the ids do not depend on the row order.
        std::vector<std::string> sorted(classes.names.begin() + 1, classes.names.end());
        std::sort(sorted.begin(), sorted.end());
        std::map<int, int> remap;
        for (std::size_t i = 1; i < classes.names.size(); ++i)
            remap[static_cast<int>(i)] =
                1 + static_cast<int>(std::find(sorted.begin(), sorted.end(), classes.names[i]) - sorted.begin());
        for (auto& [image, ids] : rows) {
            for (int& id : ids) id = remap[id];
            std::sort(ids.begin(), ids.end());
        }
        classes.names.resize(1);
        classes.names.insert(classes.names.end(), sorted.begin(), sorted.end());
    }
    std::vector<Entry> entries;
    for (const auto& image : order) {
        Entry e;
        fs::path name(image);
        e.id = (name.parent_path() / name.stem()).generic_string();
        e.image = name.has_extension() && fs::exists(dir / name) ? dir / name : find_image(dir / name);
        if (e.image.empty()) e.image = find_image(root / detail::kImages / name);
        if (e.image.empty())
            throw Error(fmt::format("{}: no such image file (listed in {})", (dir / name).string(), csv.string()));
        e.has_labels = true;
        e.labels = rows[image];
        entries.push_back(std::move(e));
    }
    if (entries.empty()) throw Error(fmt::format("{}: split lists no images", csv.string()));
    return std::make_unique<ListedDataset>(std::move(entries), std::move(classes));
}

}  // namespace

std::unique_ptr<Dataset> open_dataset(const fs::path& root, const std::string& split) {
    if (!fs::is_directory(root)) throw Error(fmt::format("{}: no such dataset folder", root.string()));
    if (fs::is_directory(root / detail::kSplits)) return open_voc(root, split);
    return open_folder(root, split);
}

}  // namespace sightline
