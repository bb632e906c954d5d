// GoogleTest: grouped moments against a two-pass reference in long double.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "trafficsplit/errors.hpp"
#include "trafficsplit/stats/moments.hpp"

namespace st = trafficsplit::stats;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

struct Data {
  std::vector<int32_t> codes;
  std::vector<std::vector<double>> columns;
};

// k correlated columns around `center`, codes uniform in [0, groups).
Data make_data(size_t rows, size_t k, size_t groups, double center, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_int_distribution<int32_t> code(0, static_cast<int32_t>(groups) - 1);
  Data d;
  d.codes.resize(rows);
  d.columns.assign(k, std::vector<double>(rows));
  for (size_t r = 0; r < rows; ++r) {
    d.codes[r] = code(rng);
    const double common = normal(rng);
    for (size_t i = 0; i < k; ++i) {
      d.columns[i][r] = center + (i + 1) * common + normal(rng) + 0.5 * d.codes[r];
    }
  }
  return d;
}

std::vector<st::ValueColumn> views(const Data& d) {
  std::vector<st::ValueColumn> out;
  for (const auto& c : d.columns) out.push_back({c.data(), st::ValueType::kFloat64});
  return out;
}

// Two passes in long double, listwise deletion of NaN rows, codes < 0 ignored.
st::GroupedMoments reference(const Data& d, size_t groups) {
  const size_t k = d.columns.size();
  st::GroupedMoments out(groups, k);
  std::vector<std::vector<long double>> sum(groups, std::vector<long double>(k, 0.0L));
  auto complete = [&](size_t r) {
    for (size_t i = 0; i < k; ++i) {
      if (std::isnan(d.columns[i][r])) return false;
    }
    return true;
  };
  for (size_t r = 0; r < d.codes.size(); ++r) {
    const int32_t g = d.codes[r];
    if (g < 0) {
      ++out.null_groups;
      continue;
    }
    if (!complete(r)) {
      ++out.skipped[g];
      continue;
    }
    ++out.n[g];
    for (size_t i = 0; i < k; ++i) sum[g][i] += d.columns[i][r];
  }
  std::vector<long double> com(groups * k * k, 0.0L);
  for (size_t r = 0; r < d.codes.size(); ++r) {
    const int32_t g = d.codes[r];
    if (g < 0 || !complete(r)) continue;
    for (size_t i = 0; i < k; ++i) {
      for (size_t j = 0; j < k; ++j) {
        const long double di = d.columns[i][r] - sum[g][i] / out.n[g];
        const long double dj = d.columns[j][r] - sum[g][j] / out.n[g];
        com[(g * k + i) * k + j] += di * dj;
      }
    }
  }
  for (size_t g = 0; g < groups; ++g) {
    for (size_t i = 0; i < k; ++i) {
      out.means[g * k + i] = out.n[g] ? static_cast<double>(sum[g][i] / out.n[g]) : 0.0;
    }
    for (size_t t = 0; t < k * k; ++t) out.comoments[g * k * k + t] = com[g * k * k + t];
  }
  return out;
}

// Values agree to `rel` relative to the scale of their matrix (co-moments near 0 have none).
void expect_close(const st::GroupedMoments& a, const st::GroupedMoments& b, double rel) {
  ASSERT_EQ(a.groups, b.groups);
  ASSERT_EQ(a.columns, b.columns);
  EXPECT_EQ(a.null_groups, b.null_groups);
  const size_t k = a.columns;
  for (size_t g = 0; g < a.groups; ++g) {
    EXPECT_EQ(a.n[g], b.n[g]) << "group " << g;
    EXPECT_EQ(a.skipped[g], b.skipped[g]) << "group " << g;
    for (size_t i = 0; i < k; ++i) {
      const double m = b.mean(g)[i];
      EXPECT_NEAR(a.mean(g)[i], m, rel * std::max(1.0, std::abs(m))) << "group " << g;
      const double scale = std::sqrt(b.comoment(g)[i * k + i]);
      for (size_t j = 0; j < k; ++j) {
        const double c = b.comoment(g)[i * k + j];
        const double tol = rel * std::max(scale * std::sqrt(b.comoment(g)[j * k + j]), 1e-300);
        EXPECT_NEAR(a.comoment(g)[i * k + j], c, tol)
            << "group " << g << " (" << i << "," << j << ")";
      }
    }
  }
}

template <typename T>
std::vector<T> narrow(const std::vector<int32_t>& codes) {
  return std::vector<T>(codes.begin(), codes.end());
}

}  // namespace

TEST(Moments, MatchesTwoPassReferenceForEachColumnCountAndCodeWidth) {
  for (size_t k : {1, 2, 3, 4, 6}) {
    const Data d = make_data(20011, k, 5, 3.0, 7 + k);
    const auto want = reference(d, 5);
    const auto cols = views(d);
    const auto c8 = narrow<int8_t>(d.codes);
    const auto c16 = narrow<int16_t>(d.codes);
    const auto c64 = narrow<int64_t>(d.codes);
    const size_t rows = d.codes.size();
    SCOPED_TRACE("k = " + std::to_string(k));
    expect_close(st::grouped_moments(c8.data(), st::CodeType::kInt8, rows, cols, 5, 1), want,
                 1e-13);
    expect_close(st::grouped_moments(c16.data(), st::CodeType::kInt16, rows, cols, 5, 1), want,
                 1e-13);
    expect_close(st::grouped_moments(d.codes.data(), st::CodeType::kInt32, rows, cols, 5, 1), want,
                 1e-13);
    expect_close(st::grouped_moments(c64.data(), st::CodeType::kInt64, rows, cols, 5, 1), want,
                 1e-13);
  }
}

TEST(Moments, ComomentMatrixIsSymmetricWithPositiveDiagonal) {
  const Data d = make_data(5000, 4, 3, 0.0, 11);
  const auto m = st::grouped_moments(d.codes.data(), st::CodeType::kInt32, 5000, views(d), 3, 1);
  for (size_t g = 0; g < 3; ++g) {
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_GT(m.comoment(g)[i * 4 + i], 0.0);
      for (size_t j = 0; j < 4; ++j) {
        EXPECT_EQ(m.comoment(g)[i * 4 + j], m.comoment(g)[j * 4 + i]);
      }
    }
  }
}

TEST(Moments, WithoutCodesEveryRowIsOneGroup) {
  Data d = make_data(3001, 2, 4, 1.0, 3);
  const auto m = st::grouped_moments(nullptr, st::CodeType::kNone, 3001, views(d), 1, 1);
  std::fill(d.codes.begin(), d.codes.end(), 0);
  expect_close(m, reference(d, 1), 1e-13);
}

TEST(Moments, CatastrophicCancellationIsAvoided) {
  // 1e9 + noise: Σx² - (Σx)²/n loses every digit of the variance, centred sums keep them.
  const size_t rows = 200000;
  std::mt19937_64 rng(5);
  std::normal_distribution<double> noise(0.0, 1.0);
  Data d;
  d.columns.assign(1, std::vector<double>(rows));
  d.codes.assign(rows, 0);
  for (size_t r = 0; r < rows; ++r) {
    d.codes[r] = static_cast<int32_t>(r % 2);
    d.columns[0][r] = 1e9 + noise(rng) * (1 + d.codes[r]);
  }
  const auto want = reference(d, 2);
  for (unsigned threads : {1u, 2u, 3u}) {
    const auto m =
        st::grouped_moments(d.codes.data(), st::CodeType::kInt32, rows, views(d), 2, threads);
    for (size_t g = 0; g < 2; ++g) {
      EXPECT_NEAR(m.comoment(g)[0] / want.comoment(g)[0], 1.0, 1e-12);
      EXPECT_NEAR(m.mean(g)[0], want.mean(g)[0], 1e-15 * 1e9);
    }
  }
  // The naive formula in double fails on the same data, so the test can tell them apart.
  double s = 0.0, s2 = 0.0;
  int64_t n = 0;
  for (size_t r = 0; r < rows; r += 2, ++n) {
    s += d.columns[0][r];
    s2 += d.columns[0][r] * d.columns[0][r];
  }
  const double naive = s2 - s * s / static_cast<double>(n);
  EXPECT_GT(std::abs(naive / want.comoment(0)[0] - 1.0), 1e-3);
}

TEST(Moments, NaNRowsAndNullGroupsAreSkippedAndCounted) {
  Data d = make_data(10007, 3, 4, 2.0, 17);
  std::mt19937_64 rng(1);
  for (size_t r = 0; r < d.codes.size(); ++r) {
    const uint64_t u = rng() % 100;
    if (u < 5) d.columns[u % 3][r] = kNaN;  // a NaN in one of the columns
    if (u >= 95 && u < 97) d.codes[r] = -1;
    if (u == 97) d.codes[r] = -100;
  }
  const auto want = reference(d, 4);
  EXPECT_GT(want.null_groups, 0);
  for (size_t g = 0; g < 4; ++g) EXPECT_GT(want.skipped[g], 0);
  for (unsigned threads : {1u, 2u}) {
    expect_close(st::grouped_moments(d.codes.data(), st::CodeType::kInt32, d.codes.size(), views(d),
                                     4, threads),
                 want, 1e-13);
  }
  // The first row of a group NaN: its shift comes from a complete row.
  d.columns[0][0] = kNaN;
  expect_close(
      st::grouped_moments(d.codes.data(), st::CodeType::kInt32, d.codes.size(), views(d), 4, 1),
      reference(d, 4), 1e-13);
}

TEST(Moments, AllRowsNaNLeaveAnEmptyGroup) {
  Data d;
  d.codes = {0, 1, 0, 1, 2};
  d.columns = {{1.0, kNaN, 3.0, kNaN, 5.0}};
  const auto m = st::grouped_moments(d.codes.data(), st::CodeType::kInt32, 5, views(d), 3, 1);
  EXPECT_EQ(m.n[0], 2);
  EXPECT_EQ(m.n[1], 0);
  EXPECT_EQ(m.skipped[1], 2);
  EXPECT_EQ(m.mean(1)[0], 0.0);
  EXPECT_EQ(m.comoment(1)[0], 0.0);
  EXPECT_DOUBLE_EQ(m.mean(0)[0], 2.0);
  EXPECT_DOUBLE_EQ(m.comoment(0)[0], 2.0);
  EXPECT_EQ(m.n[2], 1);
  EXPECT_EQ(m.comoment(2)[0], 0.0);
}

TEST(Moments, EmptyGroupsAndEmptyInput) {
  // Groups 3..9 never occur, across many blocks.
  const Data d = make_data(50000, 2, 3, 0.0, 23);
  const auto m = st::grouped_moments(d.codes.data(), st::CodeType::kInt32, 50000, views(d), 10, 1);
  expect_close(m, reference(d, 10), 1e-13);
  for (size_t g = 3; g < 10; ++g) EXPECT_EQ(m.n[g], 0);
  const auto none = st::grouped_moments(nullptr, st::CodeType::kInt32, 0, views(d), 4, 1);
  EXPECT_EQ(none.groups, 4u);
  EXPECT_EQ(none.n, std::vector<int64_t>(4, 0));
}

TEST(Moments, ManyGroups) {
  // Above the laned-group limit: one accumulator lane and blocks sized to the group count.
  const Data d = make_data(300000, 2, 20000, 100.0, 29);
  expect_close(
      st::grouped_moments(d.codes.data(), st::CodeType::kInt32, 300000, views(d), 20000, 2),
      reference(d, 20000), 1e-12);
}

TEST(Moments, ThreadCountChangesOnlyRounding) {
  const Data d = make_data(1000003, 2, 4, 1e3, 31);
  const auto one =
      st::grouped_moments(d.codes.data(), st::CodeType::kInt32, d.codes.size(), views(d), 4, 1);
  for (unsigned threads : {2u, 3u, 7u, 16u}) {
    SCOPED_TRACE(threads);
    expect_close(st::grouped_moments(d.codes.data(), st::CodeType::kInt32, d.codes.size(), views(d),
                                     4, threads),
                 one, 1e-12);
  }
  expect_close(one, reference(d, 4), 1e-12);
}

TEST(Moments, MergeOfPartsEqualsTheWholeAndIsAssociative) {
  const Data d = make_data(30000, 3, 4, 50.0, 37);
  const auto cols = views(d);
  auto part = [&](size_t begin, size_t end) {
    std::vector<st::ValueColumn> sub;
    for (const auto& c : d.columns) sub.push_back({c.data() + begin, st::ValueType::kFloat64});
    return st::grouped_moments(d.codes.data() + begin, st::CodeType::kInt32, end - begin, sub, 4,
                               1);
  };
  const auto a = part(0, 7000), b = part(7000, 7100), c = part(7100, 30000);
  auto ab_c = a;
  ab_c.merge(b);
  ab_c.merge(c);
  auto bc = b;
  bc.merge(c);
  auto a_bc = a;
  a_bc.merge(bc);
  auto c_a = c;  // order does not matter either
  c_a.merge(a);
  c_a.merge(b);
  const auto whole = st::grouped_moments(d.codes.data(), st::CodeType::kInt32, 30000, cols, 4, 1);
  expect_close(ab_c, whole, 1e-13);
  expect_close(a_bc, whole, 1e-13);
  expect_close(c_a, whole, 1e-13);
  expect_close(st::merge_pairwise({a, b, c}), whole, 1e-13);
  // Merging an empty part changes nothing.
  auto with_empty = whole;
  with_empty.merge(st::GroupedMoments(4, 3));
  expect_close(with_empty, whole, 0.0);
  EXPECT_THROW(with_empty.merge(st::GroupedMoments(4, 2)), trafficsplit::InvalidArgument);
}

TEST(Moments, MergeMomentsIsChansUpdate) {
  // {1, 2} and {4, 7, 10}: whole {1, 2, 4, 7, 10} has mean 4.8 and Σ(x - 4.8)² = 54.8.
  int64_t n = 2;
  double mean = 1.5, com = 0.5;
  const double mean_b = 7.0, com_b = 18.0;
  st::merge_moments(1, n, &mean, &com, 3, &mean_b, &com_b);
  EXPECT_EQ(n, 5);
  EXPECT_DOUBLE_EQ(mean, 4.8);
  EXPECT_DOUBLE_EQ(com, 54.8);
}

TEST(Moments, Float32ColumnsAreReadAsTheirDoubleValues) {
  const Data d = make_data(10000, 2, 3, 10.0, 41);
  std::vector<float> f(d.columns[1].begin(), d.columns[1].end());
  Data widened = d;
  widened.columns[1].assign(f.begin(), f.end());
  std::vector<st::ValueColumn> cols = {{d.columns[0].data(), st::ValueType::kFloat64},
                                       {f.data(), st::ValueType::kFloat32}};
  const auto m = st::grouped_moments(d.codes.data(), st::CodeType::kInt32, 10000, cols, 3, 1);
  expect_close(m, reference(widened, 3), 1e-13);
}

TEST(Moments, RejectsCodesOutOfRangeAndBadColumnCounts) {
  Data d = make_data(300000, 1, 3, 0.0, 43);
  d.codes[250000] = 3;
  d.codes[280000] = 7;
  for (unsigned threads : {1u, 2u, 4u}) {
    try {
      st::grouped_moments(d.codes.data(), st::CodeType::kInt32, d.codes.size(), views(d), 3,
                          threads);
      FAIL() << "no exception";
    } catch (const trafficsplit::InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("group code 3 at row 250000"), std::string::npos)
          << e.what();
    }
  }
  EXPECT_THROW(st::grouped_moments(d.codes.data(), st::CodeType::kInt32, 10, {}, 3, 1),
               trafficsplit::InvalidArgument);
  std::vector<st::ValueColumn> many(st::kMaxMomentColumns + 1,
                                    {d.columns[0].data(), st::ValueType::kFloat64});
  EXPECT_THROW(st::grouped_moments(d.codes.data(), st::CodeType::kInt32, 10, many, 3, 1),
               trafficsplit::InvalidArgument);
}
