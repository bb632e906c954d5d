// KeyFunction::keys (the batch kernels' blocks of units) against KeyFunction::operator() (one
// unit, the reference) for every peer hash, text encoding and key reduction, over generated
// units: ASCII, multi-byte UTF-8, invalid UTF-8, lengths 0..300, blocks of 0..64 units of
// similar or mixed lengths; on every instruction path the CPU has (detail::set_hash_paths).
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "trafficsplit/errors.hpp"
#include "trafficsplit/hashing/digests.hpp"
#include "trafficsplit/hashing/peer.hpp"

namespace ts = trafficsplit;

namespace {

std::vector<ts::detail::HashPaths> available_paths() {
  const ts::detail::HashPaths cpu = ts::detail::cpu_hash_paths();
  std::vector<ts::detail::HashPaths> paths = {{false, 0}};
  if (cpu.sha) paths.push_back({true, 0});
  for (int simd = 1; simd <= cpu.simd; ++simd) paths.push_back({cpu.sha, simd});
  return paths;
}

// One unit of a given kind and byte length (kinds: 0 ASCII letters and digits, 1 any ASCII
// byte, 2 mixed UTF-8 of 1..4-byte characters, 3 UTF-8 with one invalid byte sequence).
std::string make_unit(std::mt19937& random, int kind, size_t length) {
  static const char* const kChars[] = {
      "a",        "Z",           "7", "-", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80",
      "\xD7\x90", "\xEF\xBF\xBF"};
  static const char* const kInvalid[] = {
      "\x80", "\xC3", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xFF", "\xE2\x82"};
  std::string unit;
  if (kind <= 1) {
    for (size_t i = 0; i < length; ++i) {
      unit += kind == 0 ? "abcdefghijklmnopqrstuvwxyz0123456789-"[random() % 37]
                        : static_cast<char>(random() % 128);
    }
    return unit;
  }
  while (unit.size() < length) {
    const std::string c = kChars[random() % 9];
    if (unit.size() + c.size() > length) {
      unit.append(length - unit.size(), 'x');
    } else {
      unit += c;
    }
  }
  if (kind == 3) {
    const std::string bad = kInvalid[random() % 7];
    unit.insert(random() % (unit.size() + 1), bad);
  }
  return unit;
}

struct Case {
  ts::PeerHash hash;
  ts::TextEncoding encoding;
  ts::KeyReduce reduce;
  uint64_t modulus;
  std::string prefix, suffix;
};

std::vector<Case> all_cases() {
  const ts::PeerHash hashes[] = {ts::PeerHash::fnv1a32, ts::PeerHash::fnv1a32_twice,
                                 ts::PeerHash::murmur3, ts::PeerHash::md5,
                                 ts::PeerHash::sha1,    ts::PeerHash::sha256};
  const ts::TextEncoding encodings[] = {ts::TextEncoding::utf8, ts::TextEncoding::utf16,
                                        ts::TextEncoding::codepoints,
                                        ts::TextEncoding::utf16_low_byte};
  const std::pair<ts::KeyReduce, uint64_t> reductions[] = {
      {ts::KeyReduce::none, 1},        {ts::KeyReduce::mod, 1000},
      {ts::KeyReduce::mod, 10000},     {ts::KeyReduce::mod, uint64_t{1} << 32},
      {ts::KeyReduce::mod, 1},         {ts::KeyReduce::mod, 4294967291},
      {ts::KeyReduce::mul_shift, 100}, {ts::KeyReduce::mul_shift, 7},
      {ts::KeyReduce::abs_int32, 1}};
  const std::pair<std::string, std::string> parts[] = {{"", ""},
                                                       {"checkout-traffic-", ""},
                                                       {"", "new-ui"},
                                                       {"group:", ":x"},
                                                       {"exp", ""},
                                                       {"abcdefg", "."},
                                                       {"\xC3\xA9t\xC3\xA9-", "\xE2\x82\xAC"},
                                                       {std::string(70, 'p'), std::string(3, 's')}};
  std::vector<Case> cases;
  for (const auto hash : hashes) {
    for (const auto encoding : encodings) {
      for (const auto& [reduce, modulus] : reductions) {
        for (const auto& [prefix, suffix] : parts) {
          cases.push_back({hash, encoding, reduce, modulus, prefix, suffix});
        }
      }
    }
  }
  return cases;
}

void check_blocks(const ts::KeyFunction& f, std::mt19937& random, const std::string& what) {
  for (int trial = 0; trial < 40; ++trial) {
    const size_t n = trial < 3 ? static_cast<size_t>(trial) * 32 : random() % 65;
    const int kind = trial % 5 == 4 ? -1 : trial % 4;  // -1: each unit of a random kind
    const size_t spread = trial % 3 == 0 ? 301 : 1 + random() % 8;
    const size_t base = random() % (302 - spread);
    std::vector<std::string> units(n);
    std::vector<const char*> data(n);
    std::vector<size_t> len(n);
    for (size_t i = 0; i < n; ++i) {
      units[i] = make_unit(random, kind < 0 ? static_cast<int>(random() % 4) : kind,
                           base + random() % spread);
      data[i] = units[i].empty() && random() % 2 ? nullptr : units[i].data();
      len[i] = units[i].size();
    }
    std::vector<uint64_t> keys(n + 1, 0xDEADBEEF);
    std::vector<uint8_t> ok(n + 1, 7);
    f.keys(data.data(), len.data(), n, keys.data(), ok.data());
    for (size_t i = 0; i < n; ++i) {
      uint64_t key = 0;
      const bool expected = f(data[i], len[i], &key);
      ASSERT_EQ(ok[i], expected ? 1 : 0) << what << ": unit " << i << " of " << n;
      if (expected) ASSERT_EQ(keys[i], key) << what << ": unit " << i << " of " << n;
    }
    ASSERT_EQ(ok[n], 7) << what << ": keys() wrote past n";
    ASSERT_EQ(keys[n], 0xDEADBEEF) << what << ": keys() wrote past n";
  }
}

}  // namespace

TEST(PeerKeys, KeysEqualTheScalarKeyOnEveryPath) {
  const std::vector<Case> cases = all_cases();
  const ts::detail::HashPaths saved = ts::detail::hash_paths();
  size_t functions = 0;
  for (const ts::detail::HashPaths path : available_paths()) {
    ts::detail::set_hash_paths(path);
    std::mt19937 random(20261208);
    for (const Case& c : cases) {
      ts::KeySpec spec;
      spec.hash = c.hash;
      spec.encoding = c.encoding;
      spec.reduce = c.reduce;
      spec.modulus = c.modulus;
      spec.prefix = c.prefix;
      spec.suffix = c.suffix;
      spec.seed = c.hash == ts::PeerHash::murmur3 ? 86028157 : 0;
      ts::KeyFunction f;
      try {
        f = ts::KeyFunction(spec);
      } catch (const ts::InvalidArgument&) {
        continue;  // an encoding this hash does not take
      }
      ++functions;
      const std::string what = std::string("hash ") + std::to_string(int(c.hash)) + " encoding " +
                               std::to_string(int(c.encoding)) + " reduce " +
                               std::to_string(int(c.reduce)) + " mod " + std::to_string(c.modulus) +
                               " prefix '" + c.prefix + "' path " + std::to_string(path.sha) + "/" +
                               std::to_string(path.simd);
      check_blocks(f, random, what);
    }
  }
  ts::detail::set_hash_paths(saved);
  // fnv1a32 and fnv1a32_twice take 4 encodings, murmur3 2, each digest 1: 13 of 24 pairs.
  EXPECT_EQ(functions, available_paths().size() * 13 * 9 * 8);
}

TEST(PeerKeys, LongBlocksAreKeyedInPiecesOf64) {
  // keys() takes any n; the kernels pass 64 at most, but more must work the same.
  ts::KeySpec spec;
  spec.hash = ts::PeerHash::md5;
  spec.prefix = "exp-traffic-";
  spec.reduce = ts::KeyReduce::mod;
  spec.modulus = 10000;
  for (const ts::PeerHash hash : {ts::PeerHash::md5, ts::PeerHash::fnv1a32_twice}) {
    spec.hash = hash;
    const ts::KeyFunction f(spec);
    std::mt19937 random(3);
    std::vector<std::string> units(200);
    std::vector<const char*> data;
    std::vector<size_t> len;
    for (auto& u : units) {
      u = make_unit(random, 0, 36);
      data.push_back(u.data());
      len.push_back(u.size());
    }
    std::vector<uint64_t> keys(200);
    std::vector<uint8_t> ok(200);
    f.keys(data.data(), len.data(), 200, keys.data(), ok.data());
    for (size_t i = 0; i < 200; ++i) {
      uint64_t key;
      ASSERT_TRUE(f(data[i], len[i], &key));
      ASSERT_EQ(ok[i], 1);
      ASSERT_EQ(keys[i], key) << i;
    }
  }
}
