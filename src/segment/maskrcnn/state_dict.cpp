// state_dict files shared with Python. Reading: LibTorch 1.13's torch::pickle_load turns the
// OrderedDict of model.state_dict() into None (and has no SETITEM opcode), so this file reads the
// pickle itself: the few opcodes torch.save emits for a dict of tensors, storages from the zip
// records. Writing: torch::pickle_save of a plain dict, which torch.load reads.
#include <algorithm>
#include <cstring>
#include <fstream>
#include <memory>
#include <unordered_map>

#include <caffe2/serialize/inline_container.h>
#include <fmt/format.h>

#include "segment/maskrcnn/parts.hpp"
#include "sightline/core.hpp"

namespace sightline {

namespace {

struct Value;
using ValuePtr = std::shared_ptr<Value>;

// The Python objects a state_dict pickle holds.
struct Value {
    enum Kind { None, Bool, Int, Float, String, Tuple, Dict, Global, Tensor, Mark };
    Kind kind = None;
    int64_t i = 0;
    double f = 0;
    std::string s;                                     // String, Global ("module.name")
    std::vector<ValuePtr> items;                       // Tuple (also lists)
    std::vector<std::pair<ValuePtr, ValuePtr>> entries;  // Dict
    torch::Tensor tensor;                              // Tensor, or a storage as a 1-D tensor
};

ValuePtr make(Value::Kind kind) {
    auto v = std::make_shared<Value>();
    v->kind = kind;
    return v;
}

torch::ScalarType storage_dtype(const std::string& global) {
    static const std::map<std::string, torch::ScalarType> types = {
        {"torch.FloatStorage", torch::kFloat},   {"torch.DoubleStorage", torch::kDouble},
        {"torch.HalfStorage", torch::kHalf},     {"torch.BFloat16Storage", torch::kBFloat16},
        {"torch.LongStorage", torch::kLong},     {"torch.IntStorage", torch::kInt},
        {"torch.ShortStorage", torch::kShort},   {"torch.CharStorage", torch::kChar},
        {"torch.ByteStorage", torch::kByte},     {"torch.BoolStorage", torch::kBool}};
    const auto it = types.find(global);
    if (it == types.end()) throw std::runtime_error("unsupported storage type " + global);
    return it->second;
}

class StateDictUnpickler {
public:
    StateDictUnpickler(caffe2::serialize::PyTorchStreamReader& reader, const char* data, size_t size)
        : reader_(reader), p_(data), end_(data + size) {}

    ValuePtr run() {
        for (;;) {
            const auto op = static_cast<unsigned char>(byte());
            switch (op) {
            case 0x80: byte(); break;                  // PROTO
            case 0x95: bytes(8); break;                // FRAME
            case '.': return pop();                    // STOP
            case '(': stack_.push_back(make(Value::Mark)); break;
            case '}': stack_.push_back(make(Value::Dict)); break;
            case ']': case ')': stack_.push_back(make(Value::Tuple)); break;
            case 't': stack_.push_back(tuple(pop_to_mark())); break;
            case 0x85: case 0x86: case 0x87: {         // TUPLE1..3
                const size_t n = op - 0x84;
                if (stack_.size() < n) fail("stack underflow");
                std::vector<ValuePtr> items(stack_.end() - static_cast<long>(n), stack_.end());
                stack_.resize(stack_.size() - n);
                stack_.push_back(tuple(items));
                break;
            }
            case 'X': push_string(read_u32()); break;  // BINUNICODE
            case 0x8c: push_string(static_cast<unsigned char>(byte())); break;
            case 0x8d: push_string(read_u64()); break;
            case 'c': {                                // GLOBAL "module\nname\n"
                const std::string module = line(), name = line();
                push_global(module + "." + name);
                break;
            }
            case 0x93: {                               // STACK_GLOBAL
                const ValuePtr name = pop(), module = pop();
                push_global(module->s + "." + name->s);
                break;
            }
            case 'q': memo_[static_cast<unsigned char>(byte())] = top(); break;
            case 'r': memo_[read_u32()] = top(); break;
            case 0x94: memo_[memo_.size()] = top(); break;
            case 'h': push_memo(static_cast<unsigned char>(byte())); break;
            case 'j': push_memo(read_u32()); break;
            case 'K': push_int(static_cast<unsigned char>(byte())); break;
            case 'M': push_int(read_uint(2)); break;
            case 'J': push_int(static_cast<int32_t>(read_u32())); break;
            case 0x8a: {                               // LONG1
                const size_t n = static_cast<unsigned char>(byte());
                if (n > 8) fail("integer too large");
                int64_t v = 0;
                const char* b = bytes(n);
                for (size_t k = 0; k < n; ++k) v |= static_cast<int64_t>(static_cast<unsigned char>(b[k])) << (8 * k);
                if (n > 0 && n < 8 && (b[n - 1] & 0x80)) v -= int64_t{1} << (8 * n);
                push_int(v);
                break;
            }
            case 'N': stack_.push_back(make(Value::None)); break;
            case 0x88: case 0x89: {
                auto v = make(Value::Bool);
                v->i = op == 0x88;
                stack_.push_back(v);
                break;
            }
            case 'G': {                                // BINFLOAT, big-endian
                const char* b = bytes(8);
                uint64_t bits = 0;
                for (int k = 0; k < 8; ++k) bits = bits << 8 | static_cast<unsigned char>(b[k]);
                auto v = make(Value::Float);
                std::memcpy(&v->f, &bits, 8);
                stack_.push_back(v);
                break;
            }
            case 'R': {                                // REDUCE
                const ValuePtr args = pop(), callable = pop();
                stack_.push_back(reduce(callable, args));
                break;
            }
            case 'b': pop(); break;                    // BUILD: OrderedDict's _metadata, dropped
            case 's': {                                // SETITEM
                const ValuePtr value = pop(), key = pop();
                dict_top()->entries.emplace_back(key, value);
                break;
            }
            case 'u': {                                // SETITEMS
                const std::vector<ValuePtr> kv = pop_to_mark();
                if (kv.size() % 2) fail("odd SETITEMS");
                for (size_t k = 0; k < kv.size(); k += 2) dict_top()->entries.emplace_back(kv[k], kv[k + 1]);
                break;
            }
            case 'a': { const ValuePtr v = pop(); top()->items.push_back(v); break; }
            case 'e': { const auto vs = pop_to_mark(); for (const auto& v : vs) top()->items.push_back(v); break; }
            case 'Q': stack_.push_back(storage(pop())); break;  // BINPERSID
            case '0': pop(); break;
            case '1': pop_to_mark(); break;
            case '2': stack_.push_back(top()); break;
            default: fail(fmt::format("unsupported pickle opcode 0x{:02x}", op));
            }
        }
    }

private:
    [[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }
    const char* bytes(size_t n) {
        if (static_cast<size_t>(end_ - p_) < n) fail("truncated pickle");
        const char* b = p_;
        p_ += n;
        return b;
    }
    char byte() { return *bytes(1); }
    uint64_t read_uint(size_t n) {
        const char* b = bytes(n);
        uint64_t v = 0;
        for (size_t k = 0; k < n; ++k) v |= static_cast<uint64_t>(static_cast<unsigned char>(b[k])) << (8 * k);
        return v;
    }
    uint32_t read_u32() { return static_cast<uint32_t>(read_uint(4)); }
    uint64_t read_u64() { return read_uint(8); }
    std::string line() {
        const char* start = p_;
        while (p_ < end_ && *p_ != '\n') ++p_;
        if (p_ == end_) fail("truncated pickle");
        return std::string(start, p_++);
    }
    ValuePtr pop() {
        if (stack_.empty()) fail("stack underflow");
        ValuePtr v = stack_.back();
        stack_.pop_back();
        return v;
    }
    ValuePtr top() {
        if (stack_.empty()) fail("stack underflow");
        return stack_.back();
    }
    ValuePtr dict_top() {
        ValuePtr d = top();
        if (d->kind != Value::Dict) fail("SETITEM on something other than a dict");
        return d;
    }
    std::vector<ValuePtr> pop_to_mark() {
        std::vector<ValuePtr> items;
        for (;;) {
            ValuePtr v = pop();
            if (v->kind == Value::Mark) break;
            items.push_back(v);
        }
        return {items.rbegin(), items.rend()};
    }
    static ValuePtr tuple(const std::vector<ValuePtr>& items) {
        auto t = make(Value::Tuple);
        t->items = items;
        return t;
    }
    void push_string(uint64_t n) {
        auto v = make(Value::String);
        v->s.assign(bytes(n), n);
        stack_.push_back(v);
    }
    void push_global(const std::string& name) {
        auto v = make(Value::Global);
        v->s = name;
        stack_.push_back(v);
    }
    void push_int(int64_t i) {
        auto v = make(Value::Int);
        v->i = i;
        stack_.push_back(v);
    }
    void push_memo(uint64_t key) {
        const auto it = memo_.find(key);
        if (it == memo_.end()) fail("unknown memo entry");
        stack_.push_back(it->second);
    }
    static std::vector<int64_t> ints(const ValuePtr& tuple) {
        std::vector<int64_t> out;
        for (const auto& v : tuple->items) out.push_back(v->i);
        return out;
    }

    // ('storage', torch.XStorage, key, location, numel) -> the record data/<key> as a 1-D tensor.
    ValuePtr storage(const ValuePtr& pid) {
        if (pid->kind != Value::Tuple || pid->items.size() < 5 || pid->items[0]->s != "storage")
            fail("unsupported persistent id");
        const torch::ScalarType dtype = storage_dtype(pid->items[1]->s);
        const std::string& key = pid->items[2]->s;
        const int64_t numel = pid->items[4]->i;
        auto cached = storages_.find(key);
        if (cached == storages_.end()) {
            const auto record = reader_.getRecord("data/" + key);
            const size_t need = static_cast<size_t>(numel) * c10::elementSize(dtype);
            if (std::get<1>(record) < need) fail("storage " + key + " is shorter than its tensor");
            torch::Tensor t = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
            std::memcpy(t.data_ptr(), std::get<0>(record).get(), need);
            cached = storages_.emplace(key, t).first;
        }
        auto v = make(Value::Tensor);
        v->tensor = cached->second;
        return v;
    }

    ValuePtr reduce(const ValuePtr& callable, const ValuePtr& args) {
        const std::string& f = callable->s;
        if (f == "collections.OrderedDict" || f == "builtins.dict") return make(Value::Dict);
        if (f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor") {
            if (args->items.size() < 4 || args->items[0]->kind != Value::Tensor) fail("malformed tensor");
            auto v = make(Value::Tensor);
            v->tensor = args->items[0]->tensor.as_strided(ints(args->items[2]), ints(args->items[3]), args->items[1]->i);
            return v;
        }
        if (f == "torch.jit._pickle.restore_type_tag") {  // LibTorch's pickle_save tags typed dicts
            if (args->items.empty()) fail("malformed type tag");
            return args->items[0];
        }
        if (f == "torch._utils._rebuild_parameter") {
            if (args->items.empty() || args->items[0]->kind != Value::Tensor) fail("malformed parameter");
            return args->items[0];
        }
        fail("unsupported object " + f + " (only dicts of tensors are read)");
    }

    caffe2::serialize::PyTorchStreamReader& reader_;
    const char* p_;
    const char* end_;
    std::vector<ValuePtr> stack_;
    std::unordered_map<uint64_t, ValuePtr> memo_;
    std::map<std::string, torch::Tensor> storages_;
};

std::string shape_text(const torch::Tensor& t) { return fmt::format("[{}]", fmt::join(t.sizes(), ",")); }

// "a, b, c and 7 more": long lists are cut so the error stays one readable line.
std::string listed(const std::vector<std::string>& names) {
    constexpr size_t kShown = 8;
    std::string out;
    for (size_t i = 0; i < names.size() && i < kShown; ++i) out += (i ? ", " : "") + names[i];
    if (names.size() > kShown) out += fmt::format(" and {} more", names.size() - kShown);
    return out;
}

}  // namespace

std::map<std::string, torch::Tensor> read_tensor_dict(const std::string& path) {
    {
        std::ifstream probe(path, std::ios::binary);
        if (!probe) throw Error(fmt::format("{}: cannot open the file", path));
        char magic[2] = {0, 0};
        probe.read(magic, 2);
        if (magic[0] != 'P' || magic[1] != 'K')
            throw Error(fmt::format("{}: not a torch.save zip file (the legacy format of "
                                    "_use_new_zipfile_serialization=False and TorchScript files are not read)",
                                    path));
    }
    try {
        caffe2::serialize::PyTorchStreamReader reader(path);
        if (!reader.hasRecord("data.pkl")) throw std::runtime_error("no data.pkl record (not written by torch.save)");
        const auto pickle = reader.getRecord("data.pkl");
        StateDictUnpickler unpickler(reader, static_cast<const char*>(std::get<0>(pickle).get()), std::get<1>(pickle));
        const ValuePtr root = unpickler.run();
        if (root->kind != Value::Dict) throw std::runtime_error("the saved object is not a dict of tensors");
        std::map<std::string, torch::Tensor> out;
        for (const auto& [key, value] : root->entries) {
            if (key->kind != Value::String) throw std::runtime_error("a dict key is not a string");
            if (value->kind != Value::Tensor)
                throw std::runtime_error(fmt::format("entry '{}' is not a tensor (save model.state_dict() itself)", key->s));
            out[key->s] = value->tensor;
        }
        return out;
    } catch (const Error&) {
        throw;
    } catch (const std::exception& e) {
        // c10::Error's what() carries a backtrace: its first line is the message.
        std::string what = e.what();
        what = what.substr(0, what.find('\n'));
        throw Error(fmt::format("{}: cannot read the state_dict ({})", path, what));
    }
}

void write_tensor_dict(const std::map<std::string, torch::Tensor>& tensors, const std::string& path) {
    c10::Dict<std::string, torch::Tensor> dict;
    for (const auto& [name, t] : tensors) dict.insert(name, t.detach().contiguous());
    const std::vector<char> bytes = torch::pickle_save(dict);
    write_file_atomic(path, bytes.data(), bytes.size());
}

void load_state_dict(MaskRCNNImpl& model, const std::string& path) {
    std::map<std::string, torch::Tensor> loaded = read_tensor_dict(path);
    const std::map<std::string, torch::Tensor> own = model.named_state();
    std::vector<std::string> missing, unexpected, mismatched;
    for (const auto& [name, t] : own) {
        const auto it = loaded.find(name);
        if (it == loaded.end()) missing.push_back(name);
        else if (!it->second.sizes().equals(t.sizes()))
            mismatched.push_back(fmt::format("{} {} in the file, {} in the model", name, shape_text(it->second), shape_text(t)));
        else if (!it->second.is_floating_point())
            mismatched.push_back(fmt::format("{} has dtype {} in the file", name, c10::toString(it->second.scalar_type())));
    }
    const std::string tracked = ".num_batches_tracked";
    for (const auto& [name, t] : loaded) {
        const bool batches_tracked = name.size() > tracked.size() && name.compare(name.size() - tracked.size(), tracked.size(), tracked) == 0;
        if (!own.count(name) && !batches_tracked) unexpected.push_back(name);
    }
    if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
        std::vector<std::string> parts;
        if (!missing.empty()) parts.push_back(fmt::format("{} missing ({})", missing.size(), listed(missing)));
        if (!unexpected.empty()) parts.push_back(fmt::format("{} unexpected ({})", unexpected.size(), listed(unexpected)));
        if (!mismatched.empty()) parts.push_back(fmt::format("{} mismatched ({})", mismatched.size(), listed(mismatched)));
        throw Error(fmt::format("{}: not a state_dict of this Mask R-CNN (ResNet-{}, {} classes): {}", path,
                                model.config().depth, model.config().num_classes, fmt::join(parts, "; ")));
    }
    torch::NoGradGuard no_grad;
    for (const auto& [name, t] : own) t.copy_(loaded.at(name));
}

void save_state_dict(const MaskRCNNImpl& model, const std::string& path) {
    std::map<std::string, torch::Tensor> state = model.named_state();
    for (auto& entry : state) entry.second = entry.second.detach().cpu();  // the file holds host tensors
    write_tensor_dict(state, path);
}

namespace {

bool ends_with(const std::string& s, const std::string& end) {
    return s.size() >= end.size() && s.compare(s.size() - end.size(), end.size(), end) == 0;
}

bool starts_with(const std::string& s, const std::string& start) { return s.rfind(start, 0) == 0; }

// The class-specific layers: their shapes follow the class count, so they are left at their
// initialisation when the file was trained on another number of classes.
bool class_specific(const std::string& name) {
    return starts_with(name, "roi_heads.box_predictor.") || starts_with(name, "roi_heads.mask_predictor.mask_fcn_logits.");
}

}  // namespace

InitReport init_from_state_dict(MaskRCNNImpl& model, const std::string& path) {
    const std::map<std::string, torch::Tensor> file = read_tensor_dict(path);
    const std::map<std::string, torch::Tensor> own = model.named_state();
    InitReport report;
    // A classifier's state_dict (torchvision.models.resnetNN) is the backbone's body; its fc and
    // BatchNorm counters have no place in the detector.
    report.backbone_only = !file.count("backbone.body.conv1.weight") && file.count("conv1.weight") != 0;
    std::map<std::string, torch::Tensor> mapped;
    std::vector<std::string> unexpected, missing, mismatched;
    for (const auto& [name, t] : file) {
        if (ends_with(name, ".num_batches_tracked")) continue;
        if (report.backbone_only && starts_with(name, "fc.")) continue;
        const std::string target = report.backbone_only ? "backbone.body." + name : name;
        if (!own.count(target)) unexpected.push_back(name);
        else mapped[target] = t;
    }
    for (const auto& [name, t] : own) {
        if (report.backbone_only && !starts_with(name, "backbone.body.")) continue;  // FPN, RPN, heads: fresh
        const auto it = mapped.find(name);
        if (it == mapped.end()) {
            missing.push_back(name);
        } else if (!it->second.sizes().equals(t.sizes())) {
            if (class_specific(name)) report.skipped.push_back(name);
            else mismatched.push_back(fmt::format("{} {} in the file, {} in the model", name, shape_text(it->second), shape_text(t)));
        } else if (!it->second.is_floating_point()) {
            mismatched.push_back(fmt::format("{} has dtype {} in the file", name, c10::toString(it->second.scalar_type())));
        }
    }
    if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
        std::vector<std::string> parts;
        if (!missing.empty()) parts.push_back(fmt::format("{} missing ({})", missing.size(), listed(missing)));
        if (!unexpected.empty()) parts.push_back(fmt::format("{} unexpected ({})", unexpected.size(), listed(unexpected)));
        if (!mismatched.empty()) parts.push_back(fmt::format("{} mismatched ({})", mismatched.size(), listed(mismatched)));
        throw Error(fmt::format("{}: neither a Mask R-CNN state_dict nor a ResNet-{} classifier's for this model: {}",
                                path, model.config().depth, fmt::join(parts, "; ")));
    }
    torch::NoGradGuard no_grad;
    for (const auto& [name, t] : own) {
        const auto it = mapped.find(name);
        if (it == mapped.end() || std::find(report.skipped.begin(), report.skipped.end(), name) != report.skipped.end())
            continue;
        t.copy_(it->second);
        ++report.loaded;
    }
    return report;
}

}  // namespace sightline
