#include "train/core/atomic_file.hpp"

#include <filesystem>
#include <fstream>

#include "train/core/errors.hpp"

namespace funnel::train {

void write_file_atomically(const std::string& path, const std::vector<uint8_t>& bytes) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) throw TrainingError(temporary + ": cannot open for writing");
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) throw TrainingError(temporary + ": write failed (disk full?)");
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) throw TrainingError(path + ": cannot rename the written file into place: " + error.message());
}

}  // namespace funnel::train
