#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "trafficsplit/assignment/batch.hpp"
#include "trafficsplit/assignment/experiment.hpp"
#include "trafficsplit/errors.hpp"
#include "vectors.hpp"

namespace ts = trafficsplit;

TEST(AssignmentVectors, ScalarAndBatchMatchTheGoldenFile) {
  const auto set = ts::testing::load_assignment_vectors();
  ASSERT_GE(set.experiments.size(), 5u);
  size_t checked = 0;
  for (const auto& [name, spec] : set.experiments) {
    const ts::CompiledExperiment exp(spec);
    const auto& cases = set.cases.at(name);
    std::vector<const char*> ptrs;
    std::vector<int64_t> lens, at;
    std::vector<size_t> rows;
    for (size_t i = 0; i < cases.size(); ++i) {
      const auto& c = cases[i];
      if (!c.at_us) continue;
      ptrs.push_back(c.missing ? nullptr : c.bytes.data());
      lens.push_back(c.missing ? -1 : static_cast<int64_t>(c.bytes.size()));
      at.push_back(*c.at_us);
      rows.push_back(i);
    }
    for (const auto& c : cases) {
      if (c.missing) continue;
      const int32_t step = c.at_us ? exp.step_at(*c.at_us) : exp.current_step();
      const auto r = exp.assign(c.bytes.data(), c.bytes.size(), step);
      ASSERT_EQ(r.arm, c.arm) << name;
      ASSERT_EQ(r.bucket, c.bucket) << name;
      ASSERT_EQ(ts::reason_name(r.reason), c.reason) << name;
      ++checked;
    }
    ts::SpanColumn span;
    span.data = ptrs.data();
    span.lengths = lens.data();
    span.length = ptrs.size();
    std::vector<int16_t> arm(span.length);
    std::vector<int32_t> bucket(span.length);
    std::vector<uint8_t> reason(span.length);
    ts::BatchContext time;
    time.at_us = at.data();
    ts::assign_batch(exp, span, time, {arm.data(), bucket.data(), reason.data()}, 1);
    for (size_t k = 0; k < rows.size(); ++k) {
      const auto& c = cases[rows[k]];
      ASSERT_EQ(arm[k], c.arm);
      ASSERT_EQ(bucket[k], c.bucket);
      ASSERT_EQ(ts::reason_name(static_cast<ts::Reason>(reason[k])), c.reason);
    }
  }
  EXPECT_GT(checked, 1500u);
}

namespace {

ts::ExperimentSpec three_arms(double exposure) {
  ts::ExperimentSpec spec;
  spec.salt = "batch";
  spec.steps.push_back({std::nullopt, exposure, {40, 35, 25}});
  return spec;
}

struct Out {
  explicit Out(size_t n) : arm(n), bucket(n), reason(n) {}
  ts::BatchOutput view() { return {arm.data(), bucket.data(), reason.data()}; }
  std::vector<int16_t> arm;
  std::vector<int32_t> bucket;
  std::vector<uint8_t> reason;
};

}  // namespace

TEST(Batch, IntegersEqualTheirDecimalTextAndThreadsAgree) {
  const ts::CompiledExperiment exp(three_arms(0.6));
  const size_t n = 300000;
  std::vector<int64_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = static_cast<int64_t>(i * 2654435761u) - (1LL << 40);
  ids[0] = INT64_MIN;
  ids[1] = INT64_MAX;
  ts::IntColumn col;
  col.values = ids.data();
  col.length = n;
  Out one(n), two(n);
  ts::assign_batch(exp, col, {}, one.view(), 1);
  ts::assign_batch(exp, col, {}, two.view(), 2);
  EXPECT_EQ(one.arm, two.arm);
  EXPECT_EQ(one.bucket, two.bucket);
  for (size_t i = 0; i < n; i += 997) {
    const std::string text = std::to_string(ids[i]);
    const auto r = exp.assign(text.data(), text.size(), 0);
    ASSERT_EQ(one.arm[i], r.arm);
    ASSERT_EQ(one.bucket[i], r.bucket);
    ASSERT_EQ(one.reason[i], static_cast<uint8_t>(r.reason));
  }
}

TEST(Batch, MissingMaskAndArrowValidity) {
  const ts::CompiledExperiment exp(three_arms(1.0));
  std::vector<int32_t> ids{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  std::vector<uint8_t> missing{0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
  const uint8_t validity[2] = {0xFB, 0xFF};  // bit 2 unset -> row 2 missing
  ts::IntColumn col;
  col.kind = ts::IntKind::i32;
  col.values = ids.data();
  col.length = ids.size();
  col.missing = missing.data();
  col.validity = validity;
  Out out(ids.size());
  ts::assign_batch(exp, col, {}, out.view(), 1);
  EXPECT_EQ(out.reason[1], static_cast<uint8_t>(ts::Reason::missing_unit));
  EXPECT_EQ(out.reason[2], static_cast<uint8_t>(ts::Reason::missing_unit));
  EXPECT_EQ(out.bucket[1], -1);
  EXPECT_EQ(out.arm[2], -1);
  EXPECT_EQ(out.reason[3], static_cast<uint8_t>(ts::Reason::assigned));
}

TEST(Batch, Utf32AndArrowStringsAgreeWithUtf8Bytes) {
  const ts::CompiledExperiment exp(three_arms(0.5));
  // "aé東👩" as UTF-32 in an item of 6 code points (two trailing NULs).
  const char32_t utf32[6] = {U'a', U'\u00e9', U'\u6771', U'\U0001F469', 0, 0};
  ts::FixedWidthColumn fixed;
  fixed.utf32 = true;
  fixed.data = reinterpret_cast<const char*>(utf32);
  fixed.item_size = sizeof(utf32);
  fixed.length = 1;
  Out a(1);
  ts::assign_batch(exp, fixed, {}, a.view(), 1);
  const std::string utf8 = "a\xc3\xa9\xe6\x9d\xb1\xf0\x9f\x91\xa9";
  const auto r = exp.assign(utf8.data(), utf8.size(), 0);
  EXPECT_EQ(a.bucket[0], r.bucket);

  const int32_t offsets[3] = {0, static_cast<int32_t>(utf8.size()),
                              static_cast<int32_t>(utf8.size())};
  ts::OffsetStringColumn strings;
  strings.offsets = offsets;
  strings.data = utf8.data();
  strings.length = 2;
  Out b(2);
  ts::assign_batch(exp, strings, {}, b.view(), 1);
  EXPECT_EQ(b.bucket[0], r.bucket);
  const auto empty = exp.assign("", 0, 0);
  EXPECT_EQ(b.bucket[1], empty.bucket);

  const char32_t surrogate[1] = {0xD800};
  fixed.data = reinterpret_cast<const char*>(surrogate);
  fixed.item_size = 4;
  Out c(1);
  EXPECT_THROW(ts::assign_batch(exp, fixed, {}, c.view(), 1), ts::UnitValueError);
}

TEST(Batch, StringViewsInlineAndOutOfLine) {
  const ts::CompiledExperiment exp(three_arms(1.0));
  const std::string long_id = "0123456789abcdef-a-long-unit-id";
  std::vector<uint8_t> views(32, 0);
  const int32_t short_len = 5, long_len = static_cast<int32_t>(long_id.size());
  std::memcpy(views.data(), &short_len, 4);
  std::memcpy(views.data() + 4, "hello", 5);
  std::memcpy(views.data() + 16, &long_len, 4);
  std::memcpy(views.data() + 20, long_id.data(), 4);
  const int32_t buffer_index = 0, offset = 0;
  std::memcpy(views.data() + 24, &buffer_index, 4);
  std::memcpy(views.data() + 28, &offset, 4);
  const char* buffers[1] = {long_id.data()};
  ts::ViewStringColumn col;
  col.views = views.data();
  col.buffers = buffers;
  col.buffer_count = 1;
  col.length = 2;
  Out out(2);
  ts::assign_batch(exp, col, {}, out.view(), 1);
  EXPECT_EQ(out.bucket[0], exp.assign("hello", 5, 0).bucket);
  EXPECT_EQ(out.bucket[1], exp.assign(long_id.data(), long_id.size(), 0).bucket);
}

TEST(Batch, ArrowImportRejectsUnknownFormats) {
  ArrowSchema schema{};
  schema.format = "g";  // float64
  ArrowArray array{};
  EXPECT_THROW(ts::column_from_arrow(schema, array), ts::UnitTypeError);
}

TEST(Experiment, StepTimesAndValidation) {
  ts::ExperimentSpec spec;
  spec.salt = "t";
  spec.steps.push_back({int64_t{100}, 1.0, {100, 0}});
  spec.steps.push_back({int64_t{200}, 1.0, {0, 100}});
  const ts::CompiledExperiment exp(spec);
  EXPECT_EQ(exp.step_at(99), -1);
  EXPECT_EQ(exp.step_at(100), 0);
  EXPECT_EQ(exp.step_at(199), 0);
  EXPECT_EQ(exp.step_at(200), 1);
  EXPECT_EQ(exp.assign("u", 1, -1).reason, ts::Reason::not_started);
  EXPECT_EQ(exp.assign("u", 1, 1).arm, 1);
  spec.steps.push_back({int64_t{150}, 1.0, {50, 50}});
  EXPECT_THROW(ts::CompiledExperiment{spec}, ts::InvalidArgument);
  spec.steps.back().effective_us.reset();
  EXPECT_THROW(ts::CompiledExperiment{spec}, ts::InvalidArgument);
  spec.steps.clear();
  EXPECT_THROW(ts::CompiledExperiment{spec}, ts::InvalidArgument);
}

// A route (holdouts, a layer range, a time window) in the batch kernels gives every row what
// the scalar route then the experiment give it, with a fixed time and with a time per row.
TEST(Batch, RouteAppliesLikeTheScalarRoute) {
  ts::ExperimentSpec spec = three_arms(0.7);
  spec.steps.front().effective_us = 1000;  // rows before 1000 are not started
  const ts::CompiledExperiment exp(spec);
  ts::RouteSpec route;
  route.holdouts.push_back({ts::Hasher(ts::Algorithm::xxh3, "h1/holdout"), 100, 10, 0});
  route.holdouts.push_back({ts::Hasher(ts::Algorithm::xxh3, "h2/holdout"), 1000, 50, 0});
  route.layer = ts::RouteStage{ts::Hasher(ts::Algorithm::xxh3, "l/layer"), 10000, 2000, 7000};
  route.start_us = 500;
  route.end_us = 3000;
  const size_t n = 20000;
  std::vector<int64_t> ids(n), at(n);
  for (size_t i = 0; i < n; ++i) {
    ids[i] = static_cast<int64_t>(i * 7919) - 50000;
    at[i] = static_cast<int64_t>(i % 4) * 1000;  // 0, 1000, 2000, 3000
  }
  ts::IntColumn col;
  col.kind = ts::IntKind::i64;
  col.values = ids.data();
  col.length = n;
  auto expected = [&](size_t i, int64_t when) {
    char text[32];
    const size_t len = ts::format_decimal(ids[i], text);
    const int32_t step = exp.step_at(when);
    const ts::Reason r = route.reason(text, len, when, step);
    if (r != ts::Reason::assigned) return std::make_pair(int16_t{-1}, r);
    const auto a = exp.assign(text, len, step);
    return std::make_pair(a.arm, a.reason);
  };
  size_t seen[ts::kReasonCount] = {};
  for (const unsigned threads : {1u, 2u}) {
    ts::BatchContext per_row;
    per_row.at_us = at.data();
    per_row.route = &route;
    Out a(n);
    ts::assign_batch(exp, col, per_row, a.view(), threads);
    ts::BatchContext fixed;
    fixed.step = exp.step_at(2000);
    fixed.now_us = 2000;
    fixed.route = &route;
    Out b(n);
    ts::assign_batch(exp, col, fixed, b.view(), threads);
    for (size_t i = 0; i < n; ++i) {
      const auto [arm, reason] = expected(i, at[i]);
      ASSERT_EQ(a.arm[i], arm) << i;
      ASSERT_EQ(a.reason[i], static_cast<uint8_t>(reason)) << i;
      ++seen[static_cast<size_t>(reason)];
      const auto [arm2, reason2] = expected(i, 2000);
      ASSERT_EQ(b.arm[i], arm2) << i;
      ASSERT_EQ(b.reason[i], static_cast<uint8_t>(reason2)) << i;
    }
  }
  for (const auto r : {ts::Reason::assigned, ts::Reason::not_exposed, ts::Reason::not_started,
                       ts::Reason::stopped, ts::Reason::holdout, ts::Reason::layer_other}) {
    EXPECT_GT(seen[static_cast<size_t>(r)], 0u) << ts::reason_name(r);
  }
}

// A trusted upstream arm is refused by a stopped or not-started route, and passes over the
// holdouts and the layer; an override beats everything but a missing unit.
TEST(Route, UpstreamAndOverridePrecedence) {
  ts::RouteSpec route;
  route.holdouts.push_back({ts::Hasher(ts::Algorithm::xxh3, "h/holdout"), 100, 100, 0});
  route.layer = ts::RouteStage{ts::Hasher(ts::Algorithm::xxh3, "l/layer"), 10000, 0, 0};
  route.start_us = 500;
  route.end_us = 3000;
  const char* unit = "user-1";
  // A 100 % holdout and an empty layer range: the unit's own evaluation is holdout.
  EXPECT_EQ(route.reason(unit, 6, 1000, 0, false), ts::Reason::holdout);
  EXPECT_EQ(route.reason(unit, 6, 1000, 0, true), ts::Reason::propagated);
  EXPECT_EQ(route.reason(unit, 6, 100, 0, true), ts::Reason::not_started);
  EXPECT_EQ(route.reason(unit, 6, 3000, 0, true), ts::Reason::stopped);
  EXPECT_EQ(route.reason(unit, 6, 1000, -1, true), ts::Reason::not_started);  // no step yet
  EXPECT_EQ(route.reason(unit, 6, 1000, -1, false), ts::Reason::assigned);    // decided later
  route.stopped = true;
  EXPECT_EQ(route.reason(unit, 6, 1000, 0, true), ts::Reason::stopped);
  for (size_t r = 0; r < ts::kReasonCount; ++r) {
    const auto reason = static_cast<ts::Reason>(r);
    EXPECT_EQ(ts::RouteSpec::with_override(reason, -1), reason);
    EXPECT_EQ(ts::RouteSpec::with_override(reason, 1),
              reason == ts::Reason::missing_unit ? reason : ts::Reason::override);
  }
}

// A dictionary row's own time window and targeting over its unit's reason: missing units stay
// missing, the window beats the unit's reasons, targeting replaces only assigned/not_exposed.
TEST(Batch, RowReasonsOverDictionaryResults) {
  using R = ts::Reason;
  const std::vector<R> unit = {R::missing_unit, R::assigned, R::not_exposed, R::holdout,
                               R::assigned,     R::assigned, R::not_started};
  const std::vector<uint8_t> window = {8, 0, 0, 0, 3, 0, 0};  // stopped, -, -, -, not_started
  const std::vector<uint8_t> eligible = {0, 0, 0, 0, 0, 1, 0};
  const std::vector<R> want = {R::missing_unit, R::targeting_miss, R::targeting_miss, R::holdout,
                               R::not_started,  R::assigned,       R::not_started};
  const size_t n = unit.size();
  std::vector<int16_t> arm(n, 1);
  std::vector<int32_t> bucket(n, 7);
  std::vector<uint8_t> reason(n);
  for (size_t i = 0; i < n; ++i) reason[i] = static_cast<uint8_t>(unit[i]);
  ts::apply_row_reasons(eligible.data(), window.data(), n,
                        {arm.data(), bucket.data(), reason.data()});
  for (size_t i = 0; i < n; ++i) {
    EXPECT_EQ(reason[i], static_cast<uint8_t>(want[i])) << i;
    EXPECT_EQ(arm[i], want[i] == unit[i] ? 1 : -1) << i;
    EXPECT_EQ(bucket[i], 7) << i;
  }
}

TEST(Batch, CountResultsByReasonAndArm) {
  using namespace trafficsplit;
  const std::vector<uint8_t> reason{0, 0, 1, 0, 1, 2};
  const std::vector<int16_t> arm{0, 1, -1, 1, -1, -1};
  std::vector<int64_t> counts(kReasonCount * 3, 0);
  count_results(reason.data(), arm.data(), reason.size(), 2, counts.data());
  count_results(reason.data(), arm.data(), 2, 2, counts.data());  // added, not replaced
  EXPECT_EQ(counts[0 * 3 + 1], 2);                                // reason 0, arm 0
  EXPECT_EQ(counts[0 * 3 + 2], 3);                                // reason 0, arm 1
  EXPECT_EQ(counts[1 * 3 + 0], 2);                                // reason 1 without an arm
  EXPECT_EQ(counts[2 * 3 + 0], 1);
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  EXPECT_EQ(total, 8);
  const std::vector<int16_t> bad_arm{0, 2};
  const std::vector<int64_t> before = counts;
  EXPECT_THROW(count_results(reason.data(), bad_arm.data(), 2, 2, counts.data()), InvalidArgument);
  const std::vector<uint8_t> bad_reason{static_cast<uint8_t>(kReasonCount)};
  EXPECT_THROW(count_results(bad_reason.data(), arm.data(), 1, 2, counts.data()), InvalidArgument);
  EXPECT_EQ(counts, before);  // nothing counted from a refused batch
}
