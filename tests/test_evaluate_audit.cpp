// The audit's statistics (no model): mass and area fractions, concentrations, thresholded IoU
// against a plain per-threshold loop, the pointing game, the verdict rule and the outputs.
#include <cmath>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sightline/audit.hpp"
#include "test_support.hpp"

using namespace sightline;

namespace {

// 10x10: object (class 1) = the 2x2 square at rows/cols 1..2; context id 1 on the left half
// (cols 0..4) outside the object.
struct Scene {
    cv::Mat mask = cv::Mat::zeros(10, 10, CV_8UC1);
    cv::Mat context = cv::Mat::zeros(10, 10, CV_8UC1);
    Scene() {
        mask(cv::Rect(1, 1, 2, 2)).setTo(1);
        context(cv::Rect(0, 0, 5, 10)).setTo(1);
        context.setTo(0, mask == 1);
    }
};

// The slow twin: every statistic straight from its definition, one threshold at a time.
AuditRecord plain_audit(const cv::Mat& map, const cv::Mat& mask, const cv::Mat& context, int cls,
                        const AuditThresholds& th) {
    AuditRecord r;
    double total = 0, peak = 0;
    int64_t labelled = 0, obj = 0, ctx = 0;
    double m_obj = 0, m_ctx = 0;
    for (int y = 0; y < mask.rows; ++y)
        for (int x = 0; x < mask.cols; ++x) {
            if (mask.at<uint8_t>(y, x) == 255) continue;
            double v = std::max(0.0, double(map.at<float>(y, x)));
            ++labelled;
            total += v;
            peak = std::max(peak, v);
            if (mask.at<uint8_t>(y, x) == cls) ++obj, m_obj += v;
            else if (context.at<uint8_t>(y, x) != 0) ++ctx, m_ctx += v;
        }
    r.object_area = double(obj) / labelled;
    r.context_area = double(ctx) / labelled;
    r.object_mass = m_obj / total;
    r.context_mass = m_ctx / total;
    auto iou_at = [&](double t) {
        int64_t inter = 0, pred = 0;
        for (int y = 0; y < mask.rows; ++y)
            for (int x = 0; x < mask.cols; ++x) {
                if (mask.at<uint8_t>(y, x) == 255) continue;
                double v = map.at<float>(y, x);
                if (v > 0 && double(v) / peak >= t) {
                    ++pred;
                    if (mask.at<uint8_t>(y, x) == cls) ++inter;
                }
            }
        return double(inter) / double(pred + obj - inter);
    };
    for (double t : th.fixed) r.iou_fixed.push_back(iou_at(t));
    for (double t : audit_grid(th)) r.iou_grid.push_back(iou_at(t));
    return r;
}

AuditRecord record(const std::string& version, int cls, double m_obj, double a_obj, double m_ctx, double a_ctx,
                   bool correct, std::vector<double> grid = {}) {
    AuditRecord r;
    r.id = version + std::to_string(cls);
    r.version = version;
    r.class_id = cls;
    r.correct = correct;
    r.has_context = true;
    r.total_mass = 1.0;
    r.object_mass = m_obj;
    r.object_area = a_obj;
    r.context_mass = m_ctx;
    r.context_area = a_ctx;
    r.elsewhere_mass = 1 - m_obj - m_ctx;
    r.elsewhere_area = 1 - a_obj - a_ctx;
    r.iou_fixed = {a_obj > 0 ? 0.5 : std::nan(""), a_obj > 0 ? 0.25 : std::nan("")};
    r.iou_grid = grid.empty() ? std::vector<double>(19, a_obj > 0 ? 0.1 : std::nan("")) : grid;
    r.pointing = a_obj > 0 ? 1 : -1;
    r.object_user = {1.0, 0.0};  // a full-resolution map: the ideal users are the masks themselves
    r.context_user = {0.0, 1.0};
    return r;
}

}  // namespace

TEST(AuditStats, SmallKnownAnswer) {
    Scene s;
    cv::Mat map(10, 10, CV_32FC1, cv::Scalar(-1.0f));  // negative evidence counts nowhere
    map.setTo(3.0f, s.mask == 1);
    map.at<float>(5, 0) = 1.0f;  // one context pixel, a third of the peak
    AuditRecord r = audit_map(map, s.mask, s.context, 1);
    EXPECT_DOUBLE_EQ(r.total_mass, 13.0);
    EXPECT_DOUBLE_EQ(r.object_area, 0.04);
    EXPECT_DOUBLE_EQ(r.context_area, 0.46);
    EXPECT_DOUBLE_EQ(r.elsewhere_area, 0.50);
    EXPECT_DOUBLE_EQ(r.object_mass, 12.0 / 13.0);
    EXPECT_DOUBLE_EQ(r.context_mass, 1.0 / 13.0);
    EXPECT_DOUBLE_EQ(r.elsewhere_mass, 0.0);
    EXPECT_DOUBLE_EQ(r.object_concentration(), (12.0 / 13.0) / 0.04);
    ASSERT_EQ(r.iou_fixed.size(), 2u);
    EXPECT_DOUBLE_EQ(r.iou_fixed[0], 4.0 / 5.0);  // t = 0.3 takes the context pixel (1/3) too
    EXPECT_DOUBLE_EQ(r.iou_fixed[1], 1.0);        // t = 0.5: exactly the object
    ASSERT_EQ(r.iou_grid.size(), 19u);
    EXPECT_DOUBLE_EQ(r.iou_grid[5], 4.0 / 5.0);   // t = 0.30
    EXPECT_DOUBLE_EQ(r.iou_grid[6], 1.0);         // t = 0.35
    EXPECT_DOUBLE_EQ(r.iou_grid[18], 1.0);        // t = 0.95
    EXPECT_EQ(r.pointing, 1);
}

TEST(AuditStats, IgnorePixelsCountNowhere) {
    Scene s;
    cv::Mat map(10, 10, CV_32FC1, cv::Scalar(0.0f));
    map.setTo(3.0f, s.mask == 1);
    AuditRecord before = audit_map(map, s.mask, s.context, 1);
    cv::Mat mask = s.mask.clone();
    mask.row(9).setTo(255);
    map.row(9).setTo(100.0f);  // a huge value under the ignore band
    AuditRecord after = audit_map(map, mask, s.context, 1);
    EXPECT_DOUBLE_EQ(after.total_mass, before.total_mass);
    EXPECT_DOUBLE_EQ(after.object_mass, 1.0);
    EXPECT_DOUBLE_EQ(after.object_area, 4.0 / 90.0);
    EXPECT_DOUBLE_EQ(after.context_area, 41.0 / 90.0);  // the ignored row held 5 context pixels
    EXPECT_EQ(after.pointing, 1);
}

TEST(AuditStats, WithoutContextMaskContextIsNanAndElsewhereIsOutsideTheObject) {
    Scene s;
    cv::Mat map(10, 10, CV_32FC1, cv::Scalar(1.0f));
    AuditRecord r = audit_map(map, s.mask, cv::Mat(), 1);
    EXPECT_FALSE(r.has_context);
    EXPECT_TRUE(std::isnan(r.context_area));
    EXPECT_TRUE(std::isnan(r.context_mass));
    EXPECT_DOUBLE_EQ(r.elsewhere_area, 0.96);
    // A uniform map prefers nothing: every concentration is 1.
    EXPECT_NEAR(r.object_concentration(), 1.0, 1e-12);
    EXPECT_NEAR(r.elsewhere_mass / r.elsewhere_area, 1.0, 1e-12);
}

TEST(AuditStats, NoObjectOrNoPositiveMassIsUndefinedNotZero) {
    Scene s;
    cv::Mat map(10, 10, CV_32FC1, cv::Scalar(-2.0f));
    AuditRecord flat = audit_map(map, s.mask, s.context, 1);
    EXPECT_EQ(flat.total_mass, 0.0);
    EXPECT_TRUE(std::isnan(flat.object_mass));
    EXPECT_EQ(flat.iou_fixed[0], 0.0);  // nothing predicted, object present
    EXPECT_EQ(flat.pointing, -1);
    cv::Mat positive(10, 10, CV_32FC1, cv::Scalar(1.0f));
    AuditRecord absent = audit_map(positive, s.mask, s.context, 2);  // class 2 is not in the mask
    EXPECT_EQ(absent.object_area, 0.0);
    EXPECT_TRUE(std::isnan(absent.iou_fixed[0]));
    EXPECT_EQ(absent.pointing, -1);
    EXPECT_TRUE(std::isnan(absent.object_concentration()));
}

TEST(AuditStats, FastThresholdGridEqualsPlainLoops) {
    std::mt19937 gen(3);
    std::uniform_real_distribution<float> u(-0.5f, 1.0f);
    AuditThresholds th;
    th.fixed = {0.1, 0.3, 0.5, 0.75};
    for (int trial = 0; trial < 20; ++trial) {
        cv::Mat mask(23, 31, CV_8UC1), context(23, 31, CV_8UC1), map(23, 31, CV_32FC1);
        for (int y = 0; y < 23; ++y)
            for (int x = 0; x < 31; ++x) {
                mask.at<uint8_t>(y, x) = gen() % 7 == 0 ? 255 : gen() % 3;
                context.at<uint8_t>(y, x) = gen() % 2;
                // A third of the values lie exactly on grid thresholds (the rounding edge).
                map.at<float>(y, x) = gen() % 3 == 0 ? float(gen() % 21) / 20.0f : u(gen);
            }
        map.at<float>(0, 0) = 1.0f;
        mask.at<uint8_t>(0, 0) = 0;
        AuditRecord fast = audit_map(map, mask, context, 1, th);
        AuditRecord slow = plain_audit(map, mask, context, 1, th);
        EXPECT_NEAR(fast.object_mass, slow.object_mass, 1e-12);
        EXPECT_NEAR(fast.context_mass, slow.context_mass, 1e-12);
        EXPECT_DOUBLE_EQ(fast.object_area, slow.object_area);
        EXPECT_DOUBLE_EQ(fast.context_area, slow.context_area);
        EXPECT_NEAR(fast.object_mass + fast.context_mass + fast.elsewhere_mass, 1.0, 1e-12);
        EXPECT_DOUBLE_EQ(fast.object_area + fast.context_area + fast.elsewhere_area, 1.0);
        ASSERT_EQ(fast.iou_fixed.size(), slow.iou_fixed.size());
        for (std::size_t k = 0; k < slow.iou_fixed.size(); ++k) EXPECT_EQ(fast.iou_fixed[k], slow.iou_fixed[k]) << k;
        ASSERT_EQ(fast.iou_grid.size(), slow.iou_grid.size());
        for (std::size_t k = 0; k < slow.iou_grid.size(); ++k) EXPECT_EQ(fast.iou_grid[k], slow.iou_grid[k]) << k;
    }
}

TEST(AuditStats, PointingGameTolerance) {
    Scene s;
    cv::Mat map(10, 10, CV_32FC1, cv::Scalar(0.0f));
    map.at<float>(1, 5) = 2.0f;  // peak two pixels right of the object's edge (col 2)
    map.setTo(1.0f, s.mask == 1);
    AuditThresholds th;
    EXPECT_EQ(audit_map(map, s.mask, s.context, 1, th).pointing, 0);
    th.pointing_tolerance = 2;
    EXPECT_EQ(audit_map(map, s.mask, s.context, 1, th).pointing, 0);  // distance 3
    th.pointing_tolerance = 3;
    EXPECT_EQ(audit_map(map, s.mask, s.context, 1, th).pointing, 1);
}

TEST(AuditStats, BadInputNamesSizesAndTheMap) {
    Scene s;
    cv::Mat map(8, 10, CV_32FC1, cv::Scalar(1.0f));
    try {
        audit_map(map, s.mask, s.context, 1, {}, "img.png");
        FAIL();
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "img.png: map is 10x8 but the object mask is 10x10 (width x height)");
    }
    cv::Mat ok(10, 10, CV_32FC1, cv::Scalar(1.0f));
    try {
        audit_map(ok, s.mask, cv::Mat::zeros(10, 12, CV_8UC1), 1, {}, "img.png");
        FAIL();
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "img.png: context mask is 12x10 (type 0) but the object mask is 10x10 (8-bit)");
    }
    try {
        audit_map(ok, s.mask, s.context, 0, {}, "img.png");
        FAIL();
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "img.png: class id 0 is not an object class (1..254)");
    }
    try {
        audit_map(ok, cv::Mat(10, 10, CV_8UC1, cv::Scalar(255)), cv::Mat(), 1, {}, "img.png");
        FAIL();
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "img.png: every pixel of the mask is ignore (255)");
    }
    AuditThresholds th;
    th.fixed = {1.5};
    EXPECT_THROW(audit_map(ok, s.mask, s.context, 1, th), UsageError);
}

TEST(AuditVerdict, RuleOnThePositionBetweenTheIdealUsers) {
    EXPECT_DOUBLE_EQ(audit_position(1.0, 0.25, 4.0), 0.5);  // log 4 / log 16
    EXPECT_DOUBLE_EQ(audit_position(4.0, 0.25, 4.0), 1.0);
    EXPECT_DOUBLE_EQ(audit_position(0.25, 0.25, 4.0), 0.0);
    // A coarse map: a pure context user's map already reaches ratio 0.3 and a pure object user's
    // only 20, so 0.8 sits near the context end (p = 0.23) although the old fixed rule
    // (r <= 1/2) called it mixed.
    EXPECT_NEAR(audit_position(0.8, 0.3, 20.0), std::log(0.8 / 0.3) / std::log(20.0 / 0.3), 1e-15);
    EXPECT_EQ(audit_verdict(0.8, 0.3, 20.0), "uses context");
    EXPECT_EQ(audit_verdict(3.0, 0.3, 20.0), "mixed");  // p = 0.55
    EXPECT_EQ(audit_verdict(4.0, 0.3, 20.0), "uses the object");  // p = 0.62
    // Thresholds exactly: p = 0.6 and p = 0.4 with bounds 1/100 and 100 (r = 10^0.4, 10^-0.4).
    EXPECT_EQ(audit_verdict(std::pow(10.0, 0.4) * (1 + 1e-12), 0.01, 100.0), "uses the object");
    EXPECT_EQ(audit_verdict(std::pow(10.0, 0.4) * (1 - 1e-9), 0.01, 100.0), "mixed");
    EXPECT_EQ(audit_verdict(std::pow(10.0, -0.4) * (1 - 1e-12), 0.01, 100.0), "uses context");
    // Ideal ratios beyond [1/100, 100] are clamped, so a full-resolution map stays finite.
    EXPECT_DOUBLE_EQ(audit_position(1.0, 0.0, INFINITY), 0.5);
    EXPECT_EQ(audit_verdict(0.0, 0.3, 20.0), "uses context");   // nothing on the object
    EXPECT_EQ(audit_verdict(INFINITY, 0.3, 20.0), "uses the object");  // nothing on the context
    EXPECT_EQ(audit_verdict(std::nan(""), 0.3, 20.0), "undetermined");
    EXPECT_EQ(audit_verdict(1.0, 1.0, 1.0), "undetermined");   // a 1x1 map cannot tell them apart
    EXPECT_EQ(audit_verdict(1.0, std::nan(""), 20.0), "undetermined");
}

// Known answers on a 4x4 mask with the object in columns 0-1, pooled onto a 2x2 grid and
// upsampled back bilinearly (half-pixel centres): columns get 1, 0.75, 0.25, 0 of a cell value 1.
TEST(AuditIdealUsers, KnownAnswersAtTheMapsResolution) {
    cv::Mat mask = cv::Mat::zeros(4, 4, CV_8UC1);
    mask(cv::Rect(0, 0, 2, 4)).setTo(1);
    AuditRecord r;
    audit_ideal_users(r, mask, cv::Mat(), 1, cv::Size(2, 2));
    EXPECT_NEAR(r.object_user.object, 0.875, 1e-6);     // (1 + 0.75) / 2 per row
    EXPECT_NEAR(r.object_user.reference, 0.125, 1e-6);  // outside the object, no context mask
    EXPECT_NEAR(r.context_user.object, 0.125, 1e-6);
    EXPECT_NEAR(r.context_user.reference, 0.875, 1e-6);
    // With a context mask on column 3 only: the context user's cells are 0 and 0.5, so the
    // columns get 0, 0.125, 0.375, 0.5; column 2 is "elsewhere".
    cv::Mat context = cv::Mat::zeros(4, 4, CV_8UC1);
    context.col(3).setTo(2);
    audit_ideal_users(r, mask, context, 1, cv::Size(2, 2));
    EXPECT_NEAR(r.context_user.object, 0.125, 1e-6);
    EXPECT_NEAR(r.context_user.reference, 0.5, 1e-6);
    EXPECT_NEAR(r.object_user.object, 0.875, 1e-6);
    EXPECT_NEAR(r.object_user.reference, 0.0, 1e-6);
    // At full resolution the ideal users are the masks; on a 1x1 grid both are uniform.
    audit_ideal_users(r, mask, context, 1, cv::Size(4, 4));
    EXPECT_DOUBLE_EQ(r.object_user.object, 1.0);
    EXPECT_DOUBLE_EQ(r.context_user.reference, 1.0);
    audit_ideal_users(r, mask, cv::Mat(), 1, cv::Size(1, 1));
    EXPECT_NEAR(r.object_user.object, 0.5, 1e-6);
    EXPECT_NEAR(r.context_user.object, 0.5, 1e-6);
    // Ignore pixels count nowhere: ignoring column 3 leaves columns 0-2 (weights 1, 0.75, 0.25).
    cv::Mat ignored = mask.clone();
    ignored.col(3).setTo(255);
    audit_ideal_users(r, ignored, cv::Mat(), 1, cv::Size(2, 2));
    EXPECT_NEAR(r.object_user.object, 1.75 / 2.0, 1e-6);
    EXPECT_NEAR(r.object_user.reference, 0.25 / 2.0, 1e-6);
    EXPECT_THROW(audit_ideal_users(r, mask, cv::Mat(), 1, cv::Size(5, 2), "m.png"), Error);
    try {
        audit_ideal_users(r, mask, cv::Mat(), 1, cv::Size(0, 2), "m.png");
        FAIL();
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "m.png: map grid 0x2 is not between 1x1 and the mask's 4x4");
    }
}

// A context user seen through a coarse map: its ratio 0.8 is close to the ideal context user's.
TEST(AuditSummary, CoarseContextUserIsCalledAContextUser) {
    AuditRecord r = record("matched", 1, 0.1, 0.1, 0.75, 0.6, false);  // ratio (1) / (1.25) = 0.8
    r.object_user = {0.6, 0.3};   // ideal object user: (6) / (0.5) = 12
    r.context_user = {0.04, 0.9}; // ideal context user: (0.4) / (1.5) = 0.267
    AuditSummary s = summarise_audit({r}, {"background", "boat"});
    const ClassAudit& c = s.classes[0];
    EXPECT_NEAR(c.ratio, 0.8, 1e-12);
    EXPECT_NEAR(c.object_user_ratio, 12.0, 1e-12);
    EXPECT_NEAR(c.context_user_ratio, 0.4 / 1.5, 1e-12);
    EXPECT_NEAR(c.position, std::log(0.8 / (0.4 / 1.5)) / std::log(12.0 / (0.4 / 1.5)), 1e-12);
    EXPECT_EQ(c.verdict, "uses context");
    EXPECT_NE(c.evidence.find("between a pure context user's 0.27 and a pure object user's 12.00"), std::string::npos)
        << c.evidence;
}

// A small object the model relies on holds a small share of the mass: the area decides.
TEST(AuditSummary, SmallObjectWithMinorityMassStillUsesTheObject) {
    std::vector<AuditRecord> rs = {record("", 1, 0.2, 0.05, 0.8, 0.95, true)};
    AuditSummary s = summarise_audit(rs, {"background", "boat"});
    ASSERT_EQ(s.classes.size(), 1u);
    EXPECT_NEAR(s.classes[0].ratio, (0.2 / 0.05) / (0.8 / 0.95), 1e-12);
    EXPECT_EQ(s.classes[0].verdict, "uses the object");
    // The same mass share on an object covering half of the image is context use.
    rs = {record("", 1, 0.2, 0.5, 0.8, 0.5, true)};
    EXPECT_EQ(summarise_audit(rs, {"background", "boat"}).classes[0].verdict, "uses context");
}

TEST(AuditSummary, VerdictFromNaturalImagesBehaviourPerVersion) {
    std::vector<double> grid(19, 0.1);
    grid[9] = 0.6;  // t = 0.5 is the best threshold
    std::vector<AuditRecord> rs = {
        record("matched", 1, 0.05, 0.1, 0.9, 0.8, true, grid),
        record("matched", 1, 0.15, 0.1, 0.8, 0.8, true, grid),
        record("swapped", 1, 0.9, 0.1, 0.1, 0.8, false),   // not in the verdict
        record("context", 1, std::nan(""), 0.0, 1.0, 1.0, true),
        record("matched", 2, 0.6, 0.2, 0.3, 0.7, true),
        record("context", 2, std::nan(""), 0.0, 1.0, 1.0, false),
    };
    AuditSummary s = summarise_audit(rs, {"background", "boat", "train"});
    ASSERT_EQ(s.classes.size(), 2u);
    const ClassAudit& boat = s.classes[0];
    EXPECT_EQ(boat.name, "boat");
    EXPECT_EQ(boat.images, 2u);
    EXPECT_TRUE(boat.has_context);
    EXPECT_NEAR(boat.object_mass, 0.10, 1e-12);
    EXPECT_NEAR(boat.context_mass, 0.85, 1e-12);
    EXPECT_NEAR(boat.object_concentration, 1.0, 1e-12);
    EXPECT_NEAR(boat.reference_concentration, 0.85 / 0.8, 1e-12);
    EXPECT_EQ(boat.verdict, "mixed");
    EXPECT_DOUBLE_EQ(boat.best_threshold, 0.5);
    EXPECT_NEAR(boat.best_iou, 0.6, 1e-12);
    EXPECT_NEAR(boat.iou_fixed[0], 0.5, 1e-12);
    EXPECT_DOUBLE_EQ(boat.pointing, 1.0);
    ASSERT_EQ(boat.behaviour.size(), 3u);
    EXPECT_EQ(boat.behaviour[0].version, "matched");
    EXPECT_EQ(boat.behaviour[1].version, "swapped");
    EXPECT_EQ(boat.behaviour[2].version, "context");
    EXPECT_DOUBLE_EQ(boat.behaviour[0].accuracy, 1.0);
    EXPECT_DOUBLE_EQ(boat.behaviour[1].accuracy, 0.0);
    EXPECT_NEAR(boat.behaviour[1].context_mass, 0.1, 1e-12);
    EXPECT_TRUE(std::isnan(boat.behaviour[2].object_mass));  // no object on the context-only version
    const ClassAudit& train = s.classes[1];
    EXPECT_EQ(train.verdict, "uses the object");  // (0.6/0.2) / (0.3/0.7) = 7
    EXPECT_EQ(s.overall.images, 3u);
    EXPECT_EQ(s.overall.name, "all");
    EXPECT_DOUBLE_EQ(s.overall.behaviour[2].accuracy, 0.5);
}

TEST(AuditOutputs, JsonCsvAndUntrustworthyTable) {
    AuditResult r;
    r.model = "m.pt";
    r.method = "gradcam++";
    r.trustworthy = false;
    r.guarantee = "no faithfulness guarantee (heuristic)";
    r.class_names = {"background", "boat"};
    r.records = {record("matched", 1, 0.8, 0.1, 0.1, 0.8, true), record("swapped", 1, 0.7, 0.1, 0.2, 0.8, false)};
    r.images = 2;
    r.summary = summarise_audit(r.records, r.class_names, r.thresholds);
    std::string table = format_audit_table(r);
    EXPECT_EQ(table.rfind("NOT TRUSTWORTHY: gradcam++ has no faithfulness guarantee for this model", 0), 0u) << table;
    EXPECT_NE(table.find("uses the object"), std::string::npos);
    EXPECT_NE(table.find("swapped (ctx m%)"), std::string::npos);

    fs::path dir = test::scratch_dir("out");
    write_audit_outputs(dir, r);
    std::ifstream in(dir / "audit.json");
    nlohmann::json j = nlohmann::json::parse(in);
    EXPECT_EQ(j["trustworthy"], false);
    EXPECT_EQ(j["classes"][0]["name"], "boat");
    EXPECT_EQ(j["classes"][0]["verdict"], "uses the object");
    EXPECT_EQ(j["classes"][0]["behaviour"][1]["version"], "swapped");
    EXPECT_EQ(j["records"].size(), 2u);
    EXPECT_EQ(j["records"][0]["pointing"], true);
    EXPECT_NE(j["note"].get<std::string>().find("not the explanation method"), std::string::npos);
    std::string csv = read_file(dir / "audit.csv");
    EXPECT_EQ(csv.substr(0, csv.find('\n')),
              "class_id,class,images,object_area,context_area,object_mass,context_mass,elsewhere_mass,"
              "object_concentration,reference_concentration,ratio,context_user_ratio,object_user_ratio,position,"
              "iou@0.3,iou@0.5,best_threshold,best_iou,"
              "pointing_game,verdict,matched_images,matched_accuracy,matched_object_mass,matched_context_mass,"
              "swapped_images,swapped_accuracy,swapped_object_mass,swapped_context_mass");
    EXPECT_NE(csv.find("\n1,boat,1,0.1,0.8,0.8,0.1,"), std::string::npos) << csv;
    EXPECT_NE(csv.find("\n0,all,"), std::string::npos);
    EXPECT_TRUE(fs::exists(dir / "audit_records.csv"));
}
