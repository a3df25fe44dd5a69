// Checking the model file's checksums (Model::verify), internal to the SDK. Writers use funnel/checksum.hpp.
#pragma once

#include <cstddef>
#include <cstdint>

#include "funnel/checksum.hpp"
#include "funnel/status.hpp"
#include "funnel_generated.h"

namespace funnel {

// Checks the file's checksums: the whole file's first, and where it matches, that is all (every byte is as
// written: one pass over the file). Where it does not, or the file has none, each tensor's, each key table's
// and the item table's say where: the first mismatch is a kCorruptModel status naming the tensor or table,
// else the whole file's mismatch says that a byte outside them changed. A format 3 file must carry all of
// them: a missing one is an error too. A format 2 file carries none, and passes (has_file_checksum says so).
Status verify_checksums(const fb::Model& root, const uint8_t* data, size_t size);

// Whether the file carries its whole-file checksum (format 3 files do).
bool has_file_checksum(const fb::Model& root);

}  // namespace funnel
