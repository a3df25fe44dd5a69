// The model file's checksums (format 3 on; docs/model-file.md, "Checksums"): XXH3, 64 bits (xxHash 0.8,
// Debian's libxxhash-dev, compiled in from its header). One per tensor, per key table, for the item table's
// ids and for the whole file. Writers (the trainer's exporter, the SDK's catalogue updates and bundles) stamp
// them with these functions; Model::verify() recomputes and compares them. Loading never reads them, so it
// stays independent of the file's size; the WASM package does not export verify, and XXH3 is not linked into it.
#pragma once

#include <cstdint>
#include <span>

namespace funnel {

// XXH3-64 (seed 0) of a tensor's data bytes.
uint64_t checksum(std::span<const uint8_t> bytes);

// XXH3-64 of a key table: its bytes, then its ends, then its order (little-endian uint32), as one stream.
uint64_t string_table_checksum(std::span<const uint8_t> bytes, std::span<const uint32_t> ends, std::span<const uint32_t> order);

// XXH3-64 of an item table: its column features, then its ids (little-endian uint32), as one stream.
uint64_t item_table_checksum(std::span<const uint32_t> features, std::span<const uint32_t> ids);

// Stamps the whole-file checksum into a finished model file whose root carries the `checksum` field (a
// writer sets it to any value, e.g. 0, so that the field has its 8 bytes in the file): XXH3-64 of the file
// with those 8 bytes read as zeros. Everything else must be final. False when the buffer is no verifiable
// model or its root lacks the field.
bool seal_model_file(std::span<uint8_t> file);

}  // namespace funnel
