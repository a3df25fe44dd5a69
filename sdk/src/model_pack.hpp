// Writing a model file again from the FlatBuffers object API, for the SDK's functions that rebuild one
// (Model::update_catalogue, Model::bundle): unpack, change the unpacked tables, pack, load. Internal to the SDK.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "funnel/status.hpp"
#include "funnel_generated.h"

namespace funnel {

// The keys of an unpacked StringTable, read with the SDK's bounds checks.
std::vector<std::string> keys_of(const fb::StringTableT& table);

// A StringTable holding `keys` in this order, with its sorted order.
std::unique_ptr<fb::StringTableT> string_table(const std::vector<std::string>& keys);

// The file's bytes in the current format (kFormatVersion, which `model` is set to): every tensor's data
// aligned to 32 bytes (the SDK uses it in place), as the exporter aligns it; the rest through the generated
// object API. Every checksum is computed afresh from what is written (each tensor's, each key table's, the
// item table's, then the whole file's), so the caller must have verified whatever it copied from a file.
// An error only if the packed bytes fail the verifier (seal_model_file refuses them).
Status pack_model(fb::ModelT& model, std::vector<uint8_t>* out);

inline Status invalid_argument(std::string message) { return {StatusCode::kInvalidArgument, std::move(message)}; }

}  // namespace funnel
