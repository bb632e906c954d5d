// libFuzzer harness for the peer hashing modes' key functions (docs/fuzzing.md): the input
// chooses a key function (hash, text encoding, reduction, prefix, suffix) and a block of units,
// each copied into a heap buffer of exactly its size, so that AddressSanitizer reports any read
// past a unit (the vector paths read several units abreast). KeyFunction::keys must equal the
// one-unit operator() on every unit, on every instruction path the CPU has.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "trafficsplit/errors.hpp"
#include "trafficsplit/hashing/digests.hpp"
#include "trafficsplit/hashing/peer.hpp"

namespace ts = trafficsplit;

namespace {

[[noreturn]] void fail(const char* what, size_t unit, size_t len) {
  std::fprintf(stderr, "fuzz_peer_keys: %s at unit %zu (%zu bytes)\n", what, unit, len);
  std::abort();
}

// The (hash, encoding) pairs a key function accepts.
struct Kind {
  ts::PeerHash hash;
  ts::TextEncoding encoding;
};
constexpr Kind kKinds[] = {
    {ts::PeerHash::fnv1a32, ts::TextEncoding::utf8},
    {ts::PeerHash::fnv1a32, ts::TextEncoding::utf16},
    {ts::PeerHash::fnv1a32, ts::TextEncoding::codepoints},
    {ts::PeerHash::fnv1a32, ts::TextEncoding::utf16_low_byte},
    {ts::PeerHash::fnv1a32_twice, ts::TextEncoding::utf8},
    {ts::PeerHash::fnv1a32_twice, ts::TextEncoding::utf16},
    {ts::PeerHash::fnv1a32_twice, ts::TextEncoding::codepoints},
    {ts::PeerHash::murmur3, ts::TextEncoding::utf8},
    {ts::PeerHash::murmur3, ts::TextEncoding::utf16_low_byte},
    {ts::PeerHash::md5, ts::TextEncoding::utf8},
    {ts::PeerHash::sha1, ts::TextEncoding::utf8},
    {ts::PeerHash::sha256, ts::TextEncoding::utf8},
};
constexpr ts::KeyReduce kReduces[] = {ts::KeyReduce::none, ts::KeyReduce::mod,
                                      ts::KeyReduce::mul_shift, ts::KeyReduce::abs_int32};

// Text that is mostly ASCII (the vector paths' common case), sometimes not UTF-8 at all.
std::string text(FuzzedDataProvider& in, size_t max) {
  std::string s = in.ConsumeRandomLengthString(max);
  if (in.ConsumeBool()) {
    for (char& c : s) c = static_cast<char>(static_cast<unsigned char>(c) & 0x7F);
  }
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const Kind kind = in.PickValueInArray(kKinds);
  ts::KeySpec spec;
  spec.hash = kind.hash;
  spec.encoding = kind.encoding;
  spec.reduce = in.PickValueInArray(kReduces);
  spec.modulus = in.ConsumeIntegralInRange<uint64_t>(1, uint64_t{1} << 32);
  spec.seed = in.ConsumeIntegral<uint32_t>();
  spec.prefix = text(in, 80);
  spec.suffix = text(in, 40);
  std::unique_ptr<ts::KeyFunction> key;
  try {
    key = std::make_unique<ts::KeyFunction>(spec);
  } catch (const ts::InvalidArgument&) {
    return 0;  // a prefix or suffix that is not UTF-8 under a character encoding
  }
  const size_t n = in.ConsumeIntegralInRange<size_t>(0, 64);
  std::vector<std::unique_ptr<char[]>> owned;
  std::vector<const char*> units;
  std::vector<size_t> lens;
  for (size_t i = 0; i < n; ++i) {
    const std::string s = text(in, 300);
    // Exactly the unit's bytes, nothing after them (a null pointer for an empty unit, as a
    // column's empty value may be).
    owned.emplace_back(s.empty() ? nullptr : new char[s.size()]);
    if (!s.empty()) std::memcpy(owned.back().get(), s.data(), s.size());
    units.push_back(owned.back().get());
    lens.push_back(s.size());
  }
  const ts::detail::HashPaths cpu = ts::detail::cpu_hash_paths();
  for (int simd = cpu.simd; simd >= 0; --simd) {
    for (const bool sha : {cpu.sha, false}) {
      const ts::detail::HashPaths before = ts::detail::set_hash_paths({sha, simd});
      std::vector<uint64_t> keys(n, 0xDEADBEEF);
      std::vector<uint8_t> ok(n, 2);
      key->keys(units.data(), lens.data(), n, keys.data(), ok.data());
      ts::detail::set_hash_paths(before);
      for (size_t i = 0; i < n; ++i) {
        uint64_t one = 0;
        const bool one_ok = (*key)(units[i], lens[i], &one);
        if (ok[i] != (one_ok ? 1 : 0)) fail("keys() and operator() disagree on ok", i, lens[i]);
        if (one_ok && keys[i] != one) fail("keys() and operator() disagree", i, lens[i]);
      }
      if (!cpu.sha) break;
    }
  }
  return 0;
}
