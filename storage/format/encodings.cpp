// The table of encodings the block decoder dispatches on, by id.
#include "storage/format/encoding.h"

namespace sluice::storage::format {
namespace {

bool is_i64(column_type t) {
    return t == column_type::i64;
}
bool is_u64(column_type t) {
    return t == column_type::u64;
}
bool is_u64_or_f64(column_type t) {
    return t == column_type::u64 || t == column_type::f64;
}
bool is_u8(column_type t) {
    return t == column_type::u8;
}
bool is_string(column_type t) {
    return is_variable(t);
}

// Index: the encoding's id - 1 (docs/FORMAT.md, "Encodings").
constexpr encoding_ops table[] = {
    {"plain_u64", is_u64_or_f64, plain_u64::decode},
    {"delta_varint_i64", is_i64, delta_varint_i64::decode},
    {"varint_u64", is_u64, varint_u64::decode},
    {"plain_u8", is_u8, plain_u8::decode},
    {"plain_string", is_string, plain_string::decode},
    {"dict_string", is_string, dict_string::decode},
    {"ref_string", is_string, ref_string::decode},
    {"suffix_number_string", is_string, suffix_number_string::decode},
    {"delta_bitpack_i64", is_i64, delta_bitpack_i64::decode},
    {"ref_packed_string", is_string, ref_packed_string::decode},
    {"ref_escaped_string", is_string, ref_packed_string::decode_escaped},
};

} // namespace

const encoding_ops* find_encoding(encoding e) noexcept {
    const size_t i = size_t(e) - 1; // id 0 wraps to a huge index
    return i < std::size(table) ? &table[i] : nullptr;
}

const char* encoding_name(encoding e) noexcept {
    const encoding_ops* ops = find_encoding(e);
    return ops ? ops->name : "?";
}

} // namespace sluice::storage::format
