// Integer ids hashed a block at a time (assignment/digits.hpp): every vector path the CPU has
// gives, for every integer type, the XXH3 of the decimal text that std::to_string writes, hashed
// by the xxHash library itself.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "assignment/digits.hpp"
#include "hashing/hash_impl.hpp"
#include "trafficsplit/assignment/batch.hpp"

namespace {

namespace d = trafficsplit::detail;

// Values either side of every power of ten, of the 8-digit chunk boundaries (10^8, 10^16) and of
// the type's limits, and random values of every magnitude, for T.
template <typename T>
std::vector<T> awkward_values(uint64_t seed) {
  std::vector<T> out;
  const auto push = [&](__int128 v) {
    if (v >= static_cast<__int128>(std::numeric_limits<T>::min()) &&
        v <= static_cast<__int128>(std::numeric_limits<T>::max())) {
      out.push_back(static_cast<T>(v));
    }
  };
  __int128 p = 1;
  for (int k = 0; k <= 20; ++k, p *= 10) {
    for (int delta = -1; delta <= 1; ++delta) {
      push(p + delta);
      push(-(p + delta));
    }
  }
  for (__int128 chunk : {__int128{100000000}, __int128{10000000000000000}}) {
    for (__int128 q : {1, 7, 99, 1844, 99999999}) {
      for (int delta = -1; delta <= 1; ++delta) {
        push(q * chunk + delta);
        push(-(q * chunk + delta));
      }
    }
  }
  for (int delta = 0; delta < 3; ++delta) {
    push(static_cast<__int128>(std::numeric_limits<T>::max()) - delta);
    push(static_cast<__int128>(std::numeric_limits<T>::min()) + delta);
  }
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 20000; ++i) {
    const uint64_t bits = rng() >> (rng() % 64);  // every magnitude
    push(static_cast<__int128>(static_cast<T>(bits)));
  }
  // Runs of one length class, so that four neighbours share one (the vector paths' case).
  for (int digits = 1; digits <= 20; ++digits) {
    for (int i = 0; i < 64; ++i) {
      __int128 v = 1 + static_cast<__int128>(rng() % 9);
      for (int k = 1; k < digits; ++k) v = v * 10 + static_cast<__int128>(rng() % 10);
      push((digits % 3 == 0) ? -v : v);
    }
  }
  return out;
}

template <typename T>
void expect_every_path_matches_the_library() {
  const std::vector<T> values = awkward_values<T>(sizeof(T) * 7 + std::is_signed_v<T>);
  const uint64_t seeds[2] = {d::xxh3_inline("ranker-v2/arm", 13, 0), 0x9E3779B97F4A7C15ULL};
  const d::Xxh3Keys key0(seeds[0]), key1(seeds[1]);
  const d::Xxh3Keys* const keys[2] = {&key0, &key1};
  for (int level = 0; level <= 2; ++level) {
    // Blocks of every length up to kIntBlock at every offset: full blocks and the last,
    // shorter one.
    size_t begin = 0;
    size_t n = 1;
    while (begin < values.size()) {
      const size_t m = std::min({n, d::kIntBlock, values.size() - begin});
      uint64_t h0[d::kIntBlock], h1[d::kIntBlock];
      uint64_t* const outs[2] = {h0, h1};
      const int path = d::xxh3_integer_block_on(level, values.data() + begin, m, keys, 2, outs);
      ASSERT_LE(path, level);
      for (size_t i = 0; i < m; ++i) {
        const T v = values[begin + i];
        const std::string text = std::to_string(v);
        ASSERT_EQ(h0[i], XXH3_64bits_withSeed(text.data(), text.size(), seeds[0]))
            << "path " << path << ", value " << text;
        ASSERT_EQ(h1[i], XXH3_64bits_withSeed(text.data(), text.size(), seeds[1]))
            << "path " << path << ", value " << text;
      }
      begin += m;
      n = n % (2 * d::kIntBlock) + 7;
    }
  }
}

TEST(IntegerBlocks, EveryPathAndTypeMatchesTheLibrary) {
  expect_every_path_matches_the_library<int64_t>();
  expect_every_path_matches_the_library<uint64_t>();
  expect_every_path_matches_the_library<int32_t>();
  expect_every_path_matches_the_library<uint32_t>();
  expect_every_path_matches_the_library<int16_t>();
  expect_every_path_matches_the_library<uint16_t>();
  expect_every_path_matches_the_library<int8_t>();
  expect_every_path_matches_the_library<uint8_t>();
}

TEST(IntegerBlocks, DigitWordsHashLikeTheWrittenText) {
  // xxh3_digit_words reads the length from the words; xxh3_keyed hashes the text written out.
  const d::Xxh3Keys keys(12345);
  std::mt19937_64 rng(3);
  for (int i = 0; i < 200000; ++i) {
    const auto v = static_cast<int64_t>(rng()) >> (rng() % 64);
    d::DigitBlock block;
    d::digit_block(&v, 1, block);
    const std::string text = std::to_string(v);
    ASSERT_EQ(d::xxh3_digit_words(keys, block.words[0][0], block.words[1][0], block.words[2][0]),
              d::xxh3_keyed(keys, text.data(), text.size()))
        << text;
  }
}

}  // namespace
