#pragma once
#include <napi.h>

namespace gguf_serve {

// Per-environment state (worker threads each load the addon into their own environment).
struct AddonData {
  Napi::FunctionReference model_constructor;
};

inline AddonData* GetAddonData(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

}  // namespace gguf_serve
