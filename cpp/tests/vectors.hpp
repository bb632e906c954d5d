// Reads tests/data/assignment_vectors.tsv (shared with pytest).
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "trafficsplit/assignment/experiment.hpp"

namespace trafficsplit::testing {

inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  if (!s.empty() && s.back() == sep) out.emplace_back();
  return out;
}

inline std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

struct VectorCase {
  bool missing = false;
  std::string bytes;
  std::optional<int64_t> at_us;
  int arm = -1;
  int bucket = -1;
  std::string reason;
};

struct VectorSet {
  std::map<std::string, ExperimentSpec> experiments;
  std::map<std::string, std::vector<VectorCase>> cases;
};

inline VectorSet load_assignment_vectors() {
  VectorSet set;
  std::ifstream in(std::string(TRAFFICSPLIT_TEST_DATA) + "/assignment_vectors.tsv");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto cols = split(line, '\t');
    if (cols[0] == "E") {
      ExperimentSpec spec;
      spec.salt = from_hex(cols[2]);
      spec.algorithm = parse_algorithm(cols[3]);
      spec.buckets = static_cast<uint32_t>(std::stoul(cols[4]));
      spec.bucket_version = static_cast<uint32_t>(std::stoul(cols[5]));
      for (const auto& step : split(cols[6], ';')) {
        const auto parts = split(step, '|');
        AllocationStepSpec s;
        if (parts[0] != "-") s.effective_us = std::stoll(parts[0]);
        s.exposure = std::stod(parts[1]);
        for (const auto& w : split(parts[2], ',')) s.weights.push_back(std::stod(w));
        spec.steps.push_back(s);
      }
      set.experiments[cols[1]] = spec;
    } else if (cols[0] == "U") {
      VectorCase c;
      if (cols[2] == "none") {
        c.missing = true;
      } else if (cols[2] == "int") {
        c.bytes = cols[3];
      } else {
        c.bytes = from_hex(cols[3]);
      }
      if (cols[4] != "-") c.at_us = std::stoll(cols[4]);
      c.arm = std::stoi(cols[5]);
      c.bucket = std::stoi(cols[6]);
      c.reason = cols[7];
      set.cases[cols[1]].push_back(c);
    }
  }
  return set;
}

}  // namespace trafficsplit::testing
