// Prefetching batch loader. Workers take batch numbers in order and build whole batches; the
// consumer takes them back in order. A batch depends only on (seed, epoch, batch number), so
// the thread that built it and the time it was built never show in the numbers.
#include <chrono>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>
#include <thread>

#include <fmt/format.h>

#include "sightline/train.hpp"

namespace sightline {

namespace {

// Stream tags, so the order, a sample's augmentation and a batch's mixup never share numbers.
constexpr uint64_t kOrderStream = 1, kAugmentStream = 2, kMixupStream = 3;

}  // namespace

struct BatchLoader::State {
    const Dataset& data;
    LoaderOptions options;
    std::vector<std::vector<int>> labels;  // override, or empty
    int64_t num_classes;

    std::mutex mutex;
    std::condition_variable work_ready, batch_done;
    std::vector<std::thread> threads;
    bool stopping = false;

    int64_t epoch = -1;
    uint64_t generation = 0;              // bumped by start_epoch: late batches are dropped
    std::vector<std::size_t> order;
    int64_t num_batches = 0, next_assign = 0, next_consume = 0;
    int in_flight = 0;
    std::map<int64_t, Batch> ready;
    std::map<int64_t, std::exception_ptr> failed;
    double wait = 0.0;

    State(const Dataset& d, LoaderOptions o, std::vector<std::vector<int>> l)
        : data(d), options(std::move(o)), labels(std::move(l)),
          num_classes(static_cast<int64_t>(d.num_object_classes())) {}

    int64_t batches() const {
        auto n = static_cast<int64_t>(data.size());
        return options.drop_last ? n / options.batch_size
                                 : (n + options.batch_size - 1) / options.batch_size;
    }

    Batch build(int64_t index, int64_t for_epoch, const std::vector<std::size_t>& rows) const;
    void work();
};

Batch BatchLoader::State::build(int64_t index, int64_t for_epoch,
                                const std::vector<std::size_t>& rows) const {
    const LoaderOptions& o = options;
    const int64_t b = static_cast<int64_t>(rows.size()), s = o.input_size, plane = s * s;
    Batch batch;
    batch.index = index;
    batch.samples = rows;
    batch.images = torch::empty({b, 3, s, s});
    batch.targets = torch::zeros({b, num_classes});
    float* pixels = batch.images.data_ptr<float>();
    float* targets = batch.targets.data_ptr<float>();
    const Rng root(o.seed);
    AugmentOptions augment_options = o.augment_options;
    augment_options.size = static_cast<int>(s);
    for (int64_t r = 0; r < b; ++r) {
        Sample sample = data.get(rows[r]);
        if (o.transform) {
            Rng rng = root.fork(mix_seed(mix_seed(kAugmentStream, for_epoch), rows[r]));
            o.transform(sample, rng);
        } else if (o.augment) {
            Rng rng = root.fork(mix_seed(mix_seed(kAugmentStream, for_epoch), rows[r]));
            augment(sample, augment_options, rng);
        } else {
            resize(sample, static_cast<int>(s), static_cast<int>(s));
        }
        const cv::Mat& img = sample.image;
        if (img.type() != CV_8UC3 || img.rows != s || img.cols != s)
            throw Error(fmt::format("{}: expected a {}x{} RGB image after transforms, got {}x{} with {} channels",
                                    sample.id, s, s, img.cols, img.rows, img.channels()));
        float* out = pixels + r * 3 * plane;
        for (int c = 0; c < 3; ++c) {
            // (x / 255 - mean) / std as one multiply-add per pixel.
            const float scale = static_cast<float>(1.0 / (255.0 * o.std[c]));
            const float shift = static_cast<float>(-o.mean[c] / o.std[c]);
            for (int y = 0; y < s; ++y) {
                const uint8_t* in = img.ptr<uint8_t>(y) + c;
                float* dst = out + c * plane + y * s;
                for (int x = 0; x < s; ++x) dst[x] = in[3 * x] * scale + shift;
            }
        }
        if (o.masks) {
            const cv::Mat& m = sample.mask;
            if (m.type() != CV_8UC1 || m.rows != s || m.cols != s)
                throw Error(fmt::format("{}: expected a {}x{} mask after transforms, got {}", sample.id, s, s,
                                        m.empty() ? std::string("none") : fmt::format("{}x{}", m.cols, m.rows)));
            if (r == 0) batch.masks = torch::empty({b, s, s}, torch::kLong);
            int64_t* dst = batch.masks.data_ptr<int64_t>() + r * plane;
            for (int y = 0; y < s; ++y) {
                const uint8_t* in = m.ptr<uint8_t>(y);
                for (int x = 0; x < s; ++x) dst[y * s + x] = in[x];
            }
        }
        const std::vector<int>& ids = labels.empty() ? sample.labels : labels[rows[r]];
        for (int id : ids) {
            if (id < 1 || id > num_classes)
                throw Error(fmt::format("{}: label id {} outside the object classes 1..{}", sample.id, id,
                                        num_classes));
            targets[r * num_classes + (id - 1)] = 1.0f;
        }
    }
    if (o.mixup_alpha > 0.0) {
        // Zhang et al. 2018: x = lambda x_i + (1 - lambda) x_partner, the same for targets.
        Rng rng = root.fork(mix_seed(mix_seed(kMixupStream, for_epoch), static_cast<uint64_t>(index)));
        MixupPlan plan = plan_mixup(static_cast<std::size_t>(b), o.mixup_alpha, rng);
        auto mix = [&](const torch::Tensor& t) {
            const int64_t row = t.numel() / b;
            torch::Tensor mixed = torch::empty_like(t);
            const float* src = t.data_ptr<float>();
            float* dst = mixed.data_ptr<float>();
            const float lam = static_cast<float>(plan.lambda), rest = 1.0f - lam;
            for (int64_t r = 0; r < b; ++r) {
                const float* own = src + r * row;
                const float* other = src + static_cast<int64_t>(plan.partner[r]) * row;
                for (int64_t i = 0; i < row; ++i) dst[r * row + i] = lam * own[i] + rest * other[i];
            }
            return mixed;
        };
        batch.images = mix(batch.images);
        batch.targets = mix(batch.targets);
        batch.mixup_lambda = plan.lambda;
        batch.partner = plan.partner;
    }
    return batch;
}

void BatchLoader::State::work() {
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
        work_ready.wait(lock, [&] {
            return stopping || (epoch >= 0 && next_assign < num_batches &&
                                next_assign < next_consume + options.prefetch);
        });
        if (stopping) return;
        const int64_t index = next_assign++, for_epoch = epoch;
        const uint64_t for_generation = generation;
        const auto begin = order.begin() + index * options.batch_size;
        const auto end = order.begin() + std::min<int64_t>((index + 1) * options.batch_size,
                                                           static_cast<int64_t>(order.size()));
        std::vector<std::size_t> rows(begin, end);
        if (options.shard_count > 1) {
            const std::size_t share = rows.size() / static_cast<std::size_t>(options.shard_count);
            rows = std::vector<std::size_t>(rows.begin() + static_cast<std::ptrdiff_t>(share * options.shard_index),
                                            rows.begin() + static_cast<std::ptrdiff_t>(share * (options.shard_index + 1)));
        }
        ++in_flight;
        lock.unlock();
        Batch batch;
        std::exception_ptr error;
        try {
            batch = build(index, for_epoch, rows);
        } catch (...) {
            error = std::current_exception();
        }
        lock.lock();
        --in_flight;
        if (for_generation == generation) {
            if (error) failed[index] = error;
            else ready[index] = std::move(batch);
        }
        batch_done.notify_all();
    }
}

BatchLoader::BatchLoader(const Dataset& data, LoaderOptions options, std::vector<std::vector<int>> labels) {
    if (options.batch_size < 1) throw UsageError(fmt::format("--batch must be >= 1, got {}", options.batch_size));
    if (options.mean.size() != 3 || options.std.size() != 3)
        throw Error("loader: mean and std need 3 values (RGB)");
    if (!labels.empty() && labels.size() != data.size())
        throw Error(fmt::format("loader: {} label lists for {} samples", labels.size(), data.size()));
    if (options.shard_count < 1 || options.shard_index < 0 || options.shard_index >= options.shard_count)
        throw Error(fmt::format("loader: shard {} of {}", options.shard_index, options.shard_count));
    if (options.batch_size % options.shard_count != 0)
        throw UsageError(fmt::format("--batch {} is not a multiple of the {} processes: each takes an equal share of "
                                     "every batch",
                                     options.batch_size, options.shard_count));
    options.workers = std::max(1, options.workers);
    options.prefetch = std::max(1, options.prefetch);
    state_ = std::make_unique<State>(data, std::move(options), std::move(labels));
    for (int t = 0; t < state_->options.workers; ++t) state_->threads.emplace_back([s = state_.get()] { s->work(); });
}

BatchLoader::~BatchLoader() {
    {
        std::lock_guard<std::mutex> lock(state_->mutex);
        state_->stopping = true;
    }
    state_->work_ready.notify_all();
    for (auto& t : state_->threads) t.join();
}

int64_t BatchLoader::batches_per_epoch() const { return state_->batches(); }

std::vector<std::size_t> BatchLoader::epoch_order(int64_t epoch) const {
    std::vector<std::size_t> order(state_->data.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    if (state_->options.shuffle) {
        Rng rng = Rng(state_->options.seed).fork(mix_seed(kOrderStream, static_cast<uint64_t>(epoch)));
        rng.shuffle(order);
    }
    return order;
}

void BatchLoader::start_epoch(int64_t epoch, int64_t first_batch) {
    std::vector<std::size_t> order = epoch_order(epoch);
    std::unique_lock<std::mutex> lock(state_->mutex);
    ++state_->generation;
    state_->batch_done.wait(lock, [&] { return state_->in_flight == 0; });
    state_->ready.clear();
    state_->failed.clear();
    state_->order = std::move(order);
    state_->epoch = epoch;
    state_->num_batches = state_->batches();
    state_->next_assign = state_->next_consume = std::clamp<int64_t>(first_batch, 0, state_->num_batches);
    state_->wait = 0.0;
    state_->work_ready.notify_all();
}

std::optional<Batch> BatchLoader::next() {
    State& s = *state_;
    std::unique_lock<std::mutex> lock(s.mutex);
    if (s.epoch < 0) throw Error("loader: next() before start_epoch()");
    if (s.next_consume >= s.num_batches) return std::nullopt;
    const int64_t index = s.next_consume;
    auto start = std::chrono::steady_clock::now();
    s.batch_done.wait(lock, [&] { return s.ready.count(index) || s.failed.count(index); });
    s.wait += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (auto f = s.failed.find(index); f != s.failed.end()) std::rethrow_exception(f->second);
    Batch batch = std::move(s.ready.at(index));
    s.ready.erase(index);
    ++s.next_consume;
    s.work_ready.notify_all();
    return batch;
}

double BatchLoader::wait_seconds() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->wait;
}

}  // namespace sightline
