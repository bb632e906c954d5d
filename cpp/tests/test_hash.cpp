// The hash contract's C++ primitives (docs/assignment-spec.md §1-3): the golden vectors in
// tests/data/hash_vectors.tsv (computed with the reference packages xxhash and mmh3), the
// published MurmurHash3 x86_32 test values, FastMod, format_decimal and the salt helpers.
#include <gtest/gtest.h>

#include <charconv>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "trafficsplit/errors.hpp"
#include "trafficsplit/hashing/hash.hpp"

#ifndef TRAFFICSPLIT_TEST_DATA
#error "TRAFFICSPLIT_TEST_DATA must name the tests/data directory"
#endif

namespace ts = trafficsplit;

namespace {

constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr uint64_t kUint64Max = std::numeric_limits<uint64_t>::max();

// -- the golden vectors ---------------------------------------------------------------------

struct Vector {
  int line = 0;
  std::string algorithm;
  std::string salt;
  std::string unit_type;  // "str", "bytes" or "int"
  std::string unit;       // the bytes hashed (for int rows: the decimal text)
  uint64_t expected = 0;
};

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  throw std::runtime_error(std::string("bad hex digit '") + c + "'");
}

std::string from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) throw std::runtime_error("odd-length hex");
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    out.push_back(static_cast<char>(hex_digit(hex[i]) * 16 + hex_digit(hex[i + 1])));
  }
  return out;
}

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> fields;
  size_t start = 0;
  while (true) {
    const size_t tab = line.find('\t', start);
    fields.push_back(
        line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) break;
    start = tab + 1;
  }
  return fields;
}

uint64_t parse_u64(const std::string& text) {
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) {
    throw std::runtime_error("not a uint64: '" + text + "'");
  }
  return v;
}

std::string decode_unit(const std::string& unit_type, const std::string& column) {
  if (unit_type == "int") return column;  // the decimal text is the bytes hashed
  constexpr std::string_view kRepeat = "repeat:";
  if (column.compare(0, kRepeat.size(), kRepeat) == 0) {
    const size_t colon = column.find(':', kRepeat.size());
    if (colon == std::string::npos) throw std::runtime_error("bad repeat: " + column);
    const std::string piece =
        from_hex(std::string_view(column).substr(kRepeat.size(), colon - kRepeat.size()));
    const uint64_t count = parse_u64(column.substr(colon + 1));
    std::string out;
    out.reserve(piece.size() * count);
    for (uint64_t i = 0; i < count; ++i) out += piece;
    return out;
  }
  return from_hex(column);
}

std::vector<Vector> load_vectors() {
  const std::string path = std::string(TRAFFICSPLIT_TEST_DATA) + "/hash_vectors.tsv";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<Vector> out;
  std::string line;
  bool header_seen = false;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    const std::vector<std::string> f = split_tabs(line);
    if (f.size() != 5)
      throw std::runtime_error("line " + std::to_string(lineno) + ": not 5 fields");
    if (!header_seen) {
      if (f[0] != "algorithm" || f[1] != "salt_hex" || f[2] != "unit_type" || f[3] != "unit" ||
          f[4] != "hash64") {
        throw std::runtime_error("unexpected column names on line " + std::to_string(lineno));
      }
      header_seen = true;
      continue;
    }
    Vector v;
    v.line = lineno;
    v.algorithm = f[0];
    v.salt = from_hex(f[1]);
    v.unit_type = f[2];
    v.unit = decode_unit(f[2], f[3]);
    v.expected = parse_u64(f[4]);
    out.push_back(std::move(v));
  }
  return out;
}

const std::vector<Vector>& vectors() {
  static const std::vector<Vector> v = load_vectors();
  return v;
}

std::string trace(const Vector& v) {
  std::ostringstream s;
  s << "hash_vectors.tsv line " << v.line << " (" << v.algorithm << ", " << v.unit_type << ", "
    << v.unit.size() << " bytes)";
  return s.str();
}

}  // namespace

TEST(HashVectors, FileHasBothAlgorithmsAndEveryUnitType) {
  const auto& all = vectors();
  ASSERT_GE(all.size(), 150u);
  size_t xxh3 = 0, murmur3 = 0, ints = 0, bytes = 0, strs = 0, mib = 0;
  bool empty_salt = false;
  for (const Vector& v : all) {
    xxh3 += v.algorithm == "xxh3";
    murmur3 += v.algorithm == "murmur3";
    ints += v.unit_type == "int";
    bytes += v.unit_type == "bytes";
    strs += v.unit_type == "str";
    mib += v.unit.size() == (size_t{1} << 20);
    empty_salt = empty_salt || v.salt.empty();
  }
  EXPECT_EQ(xxh3 + murmur3, all.size());
  EXPECT_GT(xxh3, 0u);
  EXPECT_GT(murmur3, 0u);
  EXPECT_GT(ints, 0u);
  EXPECT_GT(bytes, 0u);
  EXPECT_GT(strs, 0u);
  EXPECT_GT(mib, 0u);
  EXPECT_TRUE(empty_salt);
}

TEST(HashVectors, HasherMatchesEveryRow) {
  for (const Vector& v : vectors()) {
    SCOPED_TRACE(trace(v));
    const ts::Hasher hasher(ts::parse_algorithm(v.algorithm), v.salt);
    EXPECT_EQ(hasher(v.unit.data(), v.unit.size()), v.expected);
  }
}

TEST(HashVectors, PrimitivesWithDerivedSeedMatchEveryRow) {
  for (const Vector& v : vectors()) {
    SCOPED_TRACE(trace(v));
    if (v.algorithm == "xxh3") {
      const uint64_t seed = ts::xxh3_64(v.salt.data(), v.salt.size());
      EXPECT_EQ(ts::Hasher(ts::Algorithm::xxh3, v.salt).seed(), seed);
      EXPECT_EQ(ts::xxh3_64(v.unit.data(), v.unit.size(), seed), v.expected);
    } else {
      ASSERT_EQ(v.algorithm, "murmur3");
      const uint32_t seed = ts::murmur3_x86_32(v.salt.data(), v.salt.size(), 0);
      EXPECT_EQ(ts::Hasher(ts::Algorithm::murmur3, v.salt).seed(), seed);
      EXPECT_EQ(ts::murmur3_x86_32(v.unit.data(), v.unit.size(), seed), v.expected);
      EXPECT_LE(v.expected, uint64_t{0xffffffff});
    }
  }
}

TEST(HashVectors, UnalignedInputHashesAlike) {
  // The kernels read blocks with memcpy: the bytes' address must not matter.
  for (const Vector& v : vectors()) {
    if (v.unit.size() > 4096) continue;
    SCOPED_TRACE(trace(v));
    const ts::Hasher hasher(ts::parse_algorithm(v.algorithm), v.salt);
    for (size_t shift = 1; shift < 8; ++shift) {
      std::string padded(shift, '\x5a');
      padded += v.unit;
      EXPECT_EQ(hasher(padded.data() + shift, v.unit.size()), v.expected);
    }
  }
}

TEST(HashVectors, IntegerRowsAreTheirDecimalText) {
  size_t checked_signed = 0, checked_unsigned = 0;
  for (const Vector& v : vectors()) {
    if (v.unit_type != "int") continue;
    SCOPED_TRACE(trace(v));
    const char* first = v.unit.data();
    const char* last = v.unit.data() + v.unit.size();
    char buf[32];
    int64_t s = 0;
    const auto rs = std::from_chars(first, last, s);
    if (rs.ec == std::errc() && rs.ptr == last) {
      const size_t n = ts::format_decimal(s, buf);
      EXPECT_EQ(std::string(buf, n), v.unit);
      ++checked_signed;
    }
    uint64_t u = 0;
    const auto ru = std::from_chars(first, last, u);
    if (ru.ec == std::errc() && ru.ptr == last) {
      const size_t n = ts::format_decimal(u, buf);
      EXPECT_EQ(std::string(buf, n), v.unit);
      ++checked_unsigned;
    }
    // The text of an int that fits 64 bits, formatted by the core, hashes to the row's value.
    if ((rs.ec == std::errc() && rs.ptr == last) || (ru.ec == std::errc() && ru.ptr == last)) {
      const size_t n =
          rs.ec == std::errc() ? ts::format_decimal(s, buf) : ts::format_decimal(u, buf);
      EXPECT_EQ(ts::Hasher(ts::parse_algorithm(v.algorithm), v.salt)(buf, n), v.expected);
    }
  }
  EXPECT_GT(checked_signed, 0u);
  EXPECT_GT(checked_unsigned, 0u);
}

// -- MurmurHash3 x86_32 published test values -------------------------------------------------

namespace {

struct MurmurCase {
  std::string data;
  uint32_t seed;
  uint32_t expected;
};

}  // namespace

TEST(Murmur3, PublishedTestValues) {
  // From the widely reproduced MurmurHash3_x86_32 verification table; each was checked
  // against the mmh3 package (mmh3.hash(data, seed, signed=False)).
  const std::vector<MurmurCase> cases = {
      {"", 0, 0},
      {"", 1, 0x514E28B7u},
      {"", 0xffffffffu, 0x81F16F39u},
      {std::string("\0\0\0\0", 4), 0, 0x2362F9DEu},
      {"\x21\x43\x65\x87", 0, 0xF55B516Bu},
      {"\x21\x43\x65\x87", 0x5082EDEEu, 0x2362F9DEu},
      {"\x21\x43\x65", 0, 0x7E4A8634u},
      {"\x21\x43", 0, 0xA0F7B07Au},
      {"\x21", 0, 0x72661CF4u},
      {"\xff\xff\xff\xff", 0, 0x76293B50u},
      {std::string("\0\0\0", 3), 0, 0x85F0B427u},
      {std::string("\0\0", 2), 0, 0x30F4C306u},
      {std::string("\0", 1), 0, 0x514E28B7u},
      {"test", 0, 0xBA6BD213u},
      {"abc", 0, 0xB3DD93FAu},
      {"a", 0x9747B28Cu, 0x7FA09EA6u},
      {"aaaa", 0x9747B28Cu, 0x5A97808Au},
      {"Hello, world!", 0, 0xC0363E43u},
      {"Hello, world!", 1234, 0xFAF6CDB3u},
      {"The quick brown fox jumps over the lazy dog", 0, 0x2E4FF723u},
      {"The quick brown fox jumps over the lazy dog", 0x9747B28Cu, 0x2FA826CDu},
  };
  for (const MurmurCase& c : cases) {
    SCOPED_TRACE("data of " + std::to_string(c.data.size()) + " bytes, seed " +
                 std::to_string(c.seed));
    EXPECT_EQ(ts::murmur3_x86_32(c.data.data(), c.data.size(), c.seed), c.expected);
  }
}

TEST(Murmur3, HasherSeedIsTheSaltHashWithSeedZero) {
  EXPECT_EQ(ts::Hasher(ts::Algorithm::murmur3, "").seed(), 0u);
  EXPECT_EQ(ts::Hasher(ts::Algorithm::murmur3, "test").seed(), 0xBA6BD213u);
  // With the salt "test", the empty unit is MurmurHash3("", seed 0xBA6BD213).
  const ts::Hasher h(ts::Algorithm::murmur3, "test");
  EXPECT_EQ(h("", 0), ts::murmur3_x86_32("", 0, 0xBA6BD213u));
  EXPECT_EQ(h.algorithm(), ts::Algorithm::murmur3);
}

TEST(Xxh3, PublishedEmptyInputValue) {
  // XXH3_64bits of the empty input, seed 0 (xxHash's sanity tests; the xxhash package agrees).
  EXPECT_EQ(ts::xxh3_64("", 0), 0x2D06800538D394C2ull);
  EXPECT_EQ(ts::xxh3_64("", 0, 0), 0x2D06800538D394C2ull);
  EXPECT_EQ(ts::Hasher(ts::Algorithm::xxh3, "").seed(), 0x2D06800538D394C2ull);
  EXPECT_EQ(ts::Hasher().algorithm(), ts::Algorithm::xxh3);
  EXPECT_EQ(ts::Hasher().seed(), 0u);
}

TEST(Xxh3, SeedZeroEqualsUnseeded) {
  std::mt19937_64 rng(20240611);
  for (size_t len : {0u, 1u, 3u, 4u, 8u, 9u, 16u, 17u, 128u, 129u, 240u, 241u, 1024u, 5000u}) {
    std::string s(len, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    EXPECT_EQ(ts::xxh3_64(s.data(), s.size(), 0), ts::xxh3_64(s.data(), s.size())) << len;
  }
}

// -- FastMod ----------------------------------------------------------------------------------

TEST(FastMod, EqualsRemainderOnEdgeValues) {
  const std::vector<uint32_t> divisors = {1u,          2u,          3u,         7u,      10u,
                                          100u,        10000u,      65536u,     999983u, 1000000u,
                                          2147483647u, 2147483648u, 4294967295u};
  for (uint32_t d : divisors) {
    const ts::FastMod mod(d);
    EXPECT_EQ(mod.divisor(), d);
    std::vector<uint64_t> as = {0,
                                1,
                                d - uint64_t{1},
                                d,
                                d + uint64_t{1},
                                2 * uint64_t{d} - 1,
                                2 * uint64_t{d},
                                uint64_t{0xffffffff},
                                uint64_t{0x100000000},
                                uint64_t{kInt64Max},
                                uint64_t{kInt64Max} + 1,
                                kUint64Max - 1,
                                kUint64Max,
                                kUint64Max - kUint64Max % d,
                                kUint64Max - kUint64Max % d - 1};
    for (uint64_t a : as) {
      EXPECT_EQ(mod(a), a % d) << "a=" << a << " d=" << d;
    }
  }
}

TEST(FastMod, EqualsRemainderOnRandomValues) {
  std::mt19937_64 rng(42);
  std::vector<uint32_t> divisors = {1u, 2u, 3u, 10000u, 999983u, 2147483647u, 4294967295u};
  for (int i = 0; i < 200; ++i) divisors.push_back(static_cast<uint32_t>(rng()) | 1u);
  for (int i = 0; i < 50; ++i) divisors.push_back(static_cast<uint32_t>(rng() % 2000000) + 1);
  for (uint32_t d : divisors) {
    const ts::FastMod mod(d);
    for (int i = 0; i < 2000; ++i) {
      uint64_t a = rng();
      if (i % 4 == 1) a >>= rng() % 64;  // small values too
      ASSERT_EQ(mod(a), a % d) << "a=" << a << " d=" << d;
    }
  }
}

TEST(FastMod, EqualsRemainderOnHashes) {
  // The use that matters: bucket = hash64 % buckets, for every vector.
  for (const Vector& v : vectors()) {
    for (uint32_t d : {1u, 7u, 10000u, 1000000u}) {
      EXPECT_EQ(ts::FastMod(d)(v.expected), v.expected % d) << trace(v);
    }
  }
}

TEST(FastMod, DefaultIsModuloOne) {
  const ts::FastMod mod;
  EXPECT_EQ(mod.divisor(), 1u);
  EXPECT_EQ(mod(0), 0u);
  EXPECT_EQ(mod(kUint64Max), 0u);
}

// -- format_decimal ---------------------------------------------------------------------------

namespace {

std::string fmt(int64_t v) {
  char buf[24];
  return std::string(buf, ts::format_decimal(v, buf));
}

std::string fmt(uint64_t v) {
  char buf[24];
  return std::string(buf, ts::format_decimal(v, buf));
}

}  // namespace

TEST(FormatDecimal, SignedEdgeValues) {
  EXPECT_EQ(fmt(int64_t{0}), "0");
  EXPECT_EQ(fmt(int64_t{1}), "1");
  EXPECT_EQ(fmt(int64_t{-1}), "-1");
  EXPECT_EQ(fmt(int64_t{-5}), "-5");
  EXPECT_EQ(fmt(int64_t{123}), "123");
  EXPECT_EQ(fmt(int64_t{-123}), "-123");
  EXPECT_EQ(fmt(kInt64Max), "9223372036854775807");
  EXPECT_EQ(fmt(kInt64Min), "-9223372036854775808");
  EXPECT_EQ(fmt(kInt64Min + 1), "-9223372036854775807");
}

TEST(FormatDecimal, UnsignedEdgeValues) {
  EXPECT_EQ(fmt(uint64_t{0}), "0");
  EXPECT_EQ(fmt(uint64_t{9}), "9");
  EXPECT_EQ(fmt(uint64_t{10}), "10");
  EXPECT_EQ(fmt(kUint64Max), "18446744073709551615");
  EXPECT_EQ(fmt(uint64_t{10000000000000000000ull}), "10000000000000000000");
}

TEST(FormatDecimal, PowersOfTenAndNeighbours) {
  uint64_t p = 1;
  for (int k = 0; k <= 19; ++k) {
    for (uint64_t v : {p - 1, p, p + 1}) {
      EXPECT_EQ(fmt(v), std::to_string(v));
      if (v <= static_cast<uint64_t>(kInt64Max)) {
        const auto s = static_cast<int64_t>(v);
        EXPECT_EQ(fmt(s), std::to_string(s));
        EXPECT_EQ(fmt(-s), std::to_string(-s));
      }
    }
    if (k < 19) p *= 10;
  }
}

TEST(FormatDecimal, EveryValueBelowTwoMillion) {
  for (uint64_t v = 0; v < 2000000; ++v) {
    ASSERT_EQ(fmt(v), std::to_string(v));
    ASSERT_EQ(fmt(-static_cast<int64_t>(v)), std::to_string(-static_cast<int64_t>(v)));
  }
}

TEST(FormatDecimal, ZeroAndFullEightDigitBlocks) {
  // Values whose 8-digit groups (as a formatter may split them) are 0, 1 or 99999999.
  const std::vector<uint64_t> groups = {0, 1, 9, 10, 10000, 99999999};
  for (uint64_t top : {uint64_t{0}, uint64_t{1}, uint64_t{9}, uint64_t{1000}, uint64_t{1844}}) {
    for (uint64_t mid : groups) {
      for (uint64_t low : groups) {
        const uint64_t v = (top * 100000000 + mid) * 100000000 + low;
        EXPECT_EQ(fmt(v), std::to_string(v));
        if (v <= static_cast<uint64_t>(kInt64Max)) {
          EXPECT_EQ(fmt(-static_cast<int64_t>(v)), std::to_string(-static_cast<int64_t>(v)));
        }
      }
    }
  }
}

TEST(FormatDecimal, RandomValuesMatchToString) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100000; ++i) {
    const uint64_t u = rng() >> (rng() % 64);
    ASSERT_EQ(fmt(u), std::to_string(u));
    const auto s = static_cast<int64_t>(rng()) >> (rng() % 64);
    ASSERT_EQ(fmt(s), std::to_string(s));
  }
}

TEST(FormatDecimal, WritesOnlyTheDigits) {
  // "at least 20 bytes": INT64_MIN takes exactly 20, and nothing past the returned length
  // is written.
  char buf[48];
  std::memset(buf, '@', sizeof buf);
  const size_t n = ts::format_decimal(kInt64Min, buf + 8);
  ASSERT_EQ(n, 20u);
  EXPECT_EQ(std::string(buf + 8, n), "-9223372036854775808");
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(buf[i], '@') << i;
  for (size_t i = 8 + n; i < sizeof buf; ++i) EXPECT_EQ(buf[i], '@') << i;
  std::memset(buf, '@', sizeof buf);
  const size_t m = ts::format_decimal(kUint64Max, buf + 8);
  ASSERT_EQ(m, 20u);
  for (size_t i = 8 + m; i < sizeof buf; ++i) EXPECT_EQ(buf[i], '@') << i;
}

// -- salts and algorithm names ----------------------------------------------------------------

TEST(Salts, VersionedSalt) {
  EXPECT_EQ(ts::versioned_salt("ranker-v2", 1), "ranker-v2");
  EXPECT_EQ(ts::versioned_salt("ranker-v2", 2), "ranker-v2#2");
  EXPECT_EQ(ts::versioned_salt("ranker-v2", 10), "ranker-v2#10");
  EXPECT_EQ(ts::versioned_salt("ranker-v2", 4294967295u), "ranker-v2#4294967295");
  EXPECT_EQ(ts::versioned_salt("", 1), "");
  EXPECT_EQ(ts::versioned_salt("", 3), "#3");
  EXPECT_EQ(ts::versioned_salt("Prüfung-排序", 2), "Prüfung-排序#2");
  EXPECT_EQ(ts::versioned_salt(std::string_view("a\0b", 3), 2), std::string("a\0b#2", 5));
  EXPECT_THROW(ts::versioned_salt("ranker-v2", 0), ts::InvalidArgument);
}

TEST(Salts, StageSalt) {
  EXPECT_EQ(ts::stage_salt("ranker-v2", "arm"), "ranker-v2/arm");
  EXPECT_EQ(ts::stage_salt("ranker-v2", "traffic"), "ranker-v2/traffic");
  EXPECT_EQ(ts::stage_salt(ts::versioned_salt("ranker-v2", 2), "arm"), "ranker-v2#2/arm");
  EXPECT_EQ(ts::stage_salt(ts::versioned_salt("custom", 3), "traffic"), "custom#3/traffic");
  EXPECT_EQ(ts::stage_salt("", "arm"), "/arm");
  EXPECT_EQ(ts::stage_salt("a/b", ""), "a/b/");
}

TEST(Salts, StageSaltsMatchTheVectorsOfThatSalt) {
  // The vector salt "ranker-v2/arm" is the arm stage of experiment "ranker-v2" at version 1,
  // and "ranker-v2#2/arm" the same at version 2.
  size_t seen = 0;
  for (const Vector& v : vectors()) {
    std::string salt;
    if (v.salt == "ranker-v2/arm") {
      salt = ts::stage_salt(ts::versioned_salt("ranker-v2", 1), "arm");
    } else if (v.salt == "ranker-v2#2/arm") {
      salt = ts::stage_salt(ts::versioned_salt("ranker-v2", 2), "arm");
    } else if (v.salt == "ranker-v2/traffic") {
      salt = ts::stage_salt(ts::versioned_salt("ranker-v2", 1), "traffic");
    } else {
      continue;
    }
    ++seen;
    EXPECT_EQ(ts::Hasher(ts::parse_algorithm(v.algorithm), salt)(v.unit.data(), v.unit.size()),
              v.expected)
        << trace(v);
  }
  EXPECT_GT(seen, 0u);
}

TEST(Algorithms, ParseAndName) {
  EXPECT_EQ(ts::parse_algorithm("xxh3"), ts::Algorithm::xxh3);
  EXPECT_EQ(ts::parse_algorithm("murmur3"), ts::Algorithm::murmur3);
  EXPECT_STREQ(ts::algorithm_name(ts::Algorithm::xxh3), "xxh3");
  EXPECT_STREQ(ts::algorithm_name(ts::Algorithm::murmur3), "murmur3");
  for (ts::Algorithm a : {ts::Algorithm::xxh3, ts::Algorithm::murmur3}) {
    EXPECT_EQ(ts::parse_algorithm(ts::algorithm_name(a)), a);
  }
}

TEST(Algorithms, UnknownNamesThrowInvalidArgument) {
  const std::vector<std::string> bad = {"",
                                        "XXH3",
                                        "Murmur3",
                                        "xxh3 ",
                                        " xxh3",
                                        "xxh64",
                                        "murmur3_x86_32",
                                        "md5",
                                        "xxh",
                                        "murmur",
                                        std::string("xxh3\0", 5)};
  for (const std::string& name : bad) {
    SCOPED_TRACE("name of " + std::to_string(name.size()) + " bytes: " + name);
    try {
      ts::parse_algorithm(name);
      ADD_FAILURE() << "no exception";
    } catch (const ts::InvalidArgument& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("xxh3"), std::string::npos) << what;
      EXPECT_NE(what.find("murmur3"), std::string::npos) << what;
      // what() is a C string: a name with a NUL byte shows only up to the NUL.
      const std::string shown = name.substr(0, name.find('\0'));
      EXPECT_NE(what.find("'" + shown), std::string::npos) << what;
      if (shown.size() == name.size()) {
        EXPECT_NE(what.find("'" + name + "'"), std::string::npos) << what;
      }
    }
  }
  // InvalidArgument is a std::invalid_argument, so generic handlers catch it too.
  EXPECT_THROW(ts::parse_algorithm("sha1"), std::invalid_argument);
}
