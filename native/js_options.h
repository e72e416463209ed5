#pragma once
#include <napi.h>

#include <cmath>
#include <string>

#include "errors.h"

// Reading optional, range-checked options from a JS object, with the option's name in the error.
namespace gguf_serve {

inline bool IsSet(Napi::Object o, const char* key) {
  return o.Has(key) && !o.Get(key).IsUndefined() && !o.Get(key).IsNull();
}

inline int32_t IntOption(Napi::Env env, Napi::Object o, const char* key, int32_t fallback, int32_t min, int32_t max) {
  if (!IsSet(o, key)) return fallback;
  Napi::Value v = o.Get(key);
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!(d >= min && d <= max) || d != std::floor(d)) {
    Throw(env, kCodeInvalidArgument,
          std::string(key) + " must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
  }
  return static_cast<int32_t>(d);
}

inline float FloatOption(Napi::Env env, Napi::Object o, const char* key, float fallback, float min, float max) {
  if (!IsSet(o, key)) return fallback;
  Napi::Value v = o.Get(key);
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!(d >= min && d <= max)) {
    Throw(env, kCodeInvalidArgument,
          std::string(key) + " must be a number from " + std::to_string(min) + " to " + std::to_string(max));
  }
  return static_cast<float>(d);
}

inline bool BoolOption(Napi::Object o, const char* key, bool fallback) {
  return o.Has(key) && o.Get(key).IsBoolean() ? o.Get(key).As<Napi::Boolean>().Value() : fallback;
}

}  // namespace gguf_serve
