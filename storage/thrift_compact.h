#pragma once
// An encoder for Apache Thrift's compact protocol, the encoding of Parquet's page
// headers and footer: field headers with id deltas, zigzag varints, length-prefixed
// binaries, lists with the element type in the header. Write-only and allocation-light;
// used by parquet_writer (see there why not libthrift).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::storage::thrift {

class compact_writer {
  public:
    enum type : uint8_t {
        t_true = 1, t_false = 2, t_byte = 3, t_i16 = 4, t_i32 = 5, t_i64 = 6, t_double = 7,
        t_binary = 8, t_list = 9, t_set = 10, t_map = 11, t_struct = 12,
    };

    std::string& bytes() noexcept { return _out; }

    void i8(int16_t id, int8_t v) {
        field(id, t_byte);
        _out.push_back(char(v));
    }
    void i32(int16_t id, int32_t v) {
        field(id, t_i32);
        varint(zigzag(v));
    }
    void i64(int16_t id, int64_t v) {
        field(id, t_i64);
        varint(zigzag(v));
    }
    void boolean(int16_t id, bool v) { field(id, v ? t_true : t_false); }
    void binary(int16_t id, std::string_view s) {
        field(id, t_binary);
        raw_binary(s);
    }
    // A struct field: begin_struct(id), its fields, end_struct().
    void begin_struct(int16_t id) {
        field(id, t_struct);
        push();
    }
    void end_struct() {
        _out.push_back(0); // field stop
        _last = _stack.back();
        _stack.pop_back();
    }
    // The outermost struct (no field header), closed with end_struct().
    void begin_root() { push(); }
    // A list field; then n elements: list_i32/list_binary, or begin_element() ...
    // end_struct() for structs.
    void begin_list(int16_t id, type element, size_t n) {
        field(id, t_list);
        if (n < 15) {
            _out.push_back(char((n << 4) | element));
        } else {
            _out.push_back(char(0xf0 | element));
            varint(n);
        }
    }
    void list_i32(int32_t v) { varint(zigzag(v)); }
    void list_binary(std::string_view s) { raw_binary(s); }
    void begin_element() { push(); }

  private:
    static uint64_t zigzag(int64_t v) { return (uint64_t(v) << 1) ^ uint64_t(v >> 63); }
    void push() {
        _stack.push_back(_last);
        _last = 0;
    }
    void field(int16_t id, type t) {
        int delta = int(id) - int(_last);
        if (delta > 0 && delta <= 15) {
            _out.push_back(char((delta << 4) | t));
        } else {
            _out.push_back(char(t));
            varint(zigzag(id));
        }
        _last = id;
    }
    void varint(uint64_t v) {
        while (v >= 0x80) {
            _out.push_back(char(v | 0x80));
            v >>= 7;
        }
        _out.push_back(char(v));
    }
    void raw_binary(std::string_view s) {
        varint(s.size());
        _out.append(s);
    }

    std::string _out;
    int16_t _last = 0;
    std::vector<int16_t> _stack;
};

} // namespace sluice::storage::thrift
