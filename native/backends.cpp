#include "backends.h"

#ifdef GGML_BACKEND_DL
#include <dlfcn.h>
#endif

namespace gguf_serve {
namespace {

#ifdef GGML_BACKEND_DL
// The file of the shared object that holds `address` (dladdr: works for unexported code too).
std::string FileHolding(const void* address) {
  Dl_info info;
  if (dladdr(address, &info) == 0 || info.dli_fname == nullptr) return "";
  return info.dli_fname;
}
#endif

}  // namespace

std::string LoadBackends() {
#ifdef GGML_BACKEND_DL
  // The addon's directory, not the process's (node) or the working directory ggml searches by
  // default: build/Release in a checkout, prebuilds/<platform>-<arch> in the package.
  std::string self = FileHolding(reinterpret_cast<const void*>(&LoadBackends));
  std::string dir = self.substr(0, self.find_last_of('/') + 1);
  ggml_backend_load_all_from_path(dir.empty() ? "." : dir.c_str());
  if (ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU) == nullptr) {
    return "no ggml CPU backend loads from " + (dir.empty() ? std::string(".") : dir) +
           " (libggml-cpu-<variant>.so are shipped beside the addon: is the prebuild folder complete?)";
  }
#endif
  return "";
}

std::string CpuBackendLibrary() {
#ifdef GGML_BACKEND_DL
  // Any function of the CPU module locates its file; its features list is one every variant has.
  void* fn = BackendFunction<void*>("CPU", "ggml_backend_get_features");
  if (fn != nullptr) return FileHolding(fn);
#endif
  return "";
}

std::string CpuVariant() {
  std::string file = CpuBackendLibrary();
  const std::string prefix = "libggml-cpu-";
  size_t start = file.rfind(prefix);
  if (start == std::string::npos) return "";
  start += prefix.size();
  size_t end = file.find('.', start);
  return file.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

}  // namespace gguf_serve
