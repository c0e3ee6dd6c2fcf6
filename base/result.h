#pragma once
// result<T>: the control path's error type. An expected-like value carrying either a
// T or an error (errc + a message that names the cause and the fix).
#include <string>
#include <utility>
#include <variant>

#include "base/errc.h"

namespace sluice {

struct error {
    errc code = errc::internal;
    std::string message;
};

inline error make_error(errc code, std::string message) { return error{code, std::move(message)}; }

template <typename T>
class [[nodiscard]] result {
  public:
    result(T value) : _v(std::in_place_index<0>, std::move(value)) {}
    result(error e) : _v(std::in_place_index<1>, std::move(e)) {}

    bool ok() const noexcept { return _v.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }
    T& value() & { return std::get<0>(_v); }
    const T& value() const& { return std::get<0>(_v); }
    T&& value() && { return std::get<0>(std::move(_v)); }
    T& operator*() & { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    const error& err() const& { return std::get<1>(_v); }
    error&& err() && { return std::get<1>(std::move(_v)); }

  private:
    std::variant<T, error> _v;
};

template <>
class [[nodiscard]] result<void> {
  public:
    result() = default;
    result(error e) : _err(std::move(e)), _ok(false) {}

    bool ok() const noexcept { return _ok; }
    explicit operator bool() const noexcept { return _ok; }
    const error& err() const& { return _err; }
    error&& err() && { return std::move(_err); }

  private:
    error _err;
    bool _ok = true;
};

inline result<void> ok_result() { return result<void>{}; }

} // namespace sluice

// Propagate an error from a result-returning expression.
#define SLUICE_TRY(expr)                                                                      \
    do {                                                                                      \
        auto&& _sluice_r = (expr);                                                            \
        if (!_sluice_r.ok()) return std::move(_sluice_r).err();                               \
    } while (0)
