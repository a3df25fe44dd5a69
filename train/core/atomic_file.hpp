// The one way the trainer writes a file: a whole new file or the old one, never half of one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace funnel::train {

// Writes bytes to a temporary file beside `path`, then renames it over `path`. Throws TrainingError
// naming the file when the write or the rename fails.
void write_file_atomically(const std::string& path, const std::vector<uint8_t>& bytes);

}  // namespace funnel::train
