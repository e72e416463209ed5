#pragma once
#include <string>

#include "ggml-backend.h"

// ggml's backends as this addon gets them. In a static build they are compiled in. In the
// portable CPU-variants build (GGUF_SERVE_CPU_VARIANTS, ggml built with GGML_BACKEND_DL) they are
// shared modules beside the .node: libggml-cpu-<variant>.so once per x86-64 ISA level, of which
// ggml loads the one that scores best on this CPU, and libggml-rpc.so.
namespace gguf_serve {

// Loads the backend modules from the addon's own directory (a no-op in a static build). Returns
// "" or why the addon cannot run: no CPU backend could be loaded.
std::string LoadBackends();

// The loaded CPU backend module ("" when the CPU backend is compiled into the addon).
std::string CpuBackendLibrary();

// Its variant, from the file name: "icelake" for libggml-cpu-icelake.so ("" when compiled in).
std::string CpuVariant();

// A backend's extra function, found through its registry (ggml_backend_reg_get_proc_address):
// it cannot be linked when the backend is a module, and this works in both builds. Null when the
// backend or the function is missing.
template <typename Fn>
Fn BackendFunction(const char* backend, const char* name) {
  ggml_backend_reg_t reg = ggml_backend_reg_by_name(backend);
  return reg ? reinterpret_cast<Fn>(ggml_backend_reg_get_proc_address(reg, name)) : nullptr;
}

}  // namespace gguf_serve
