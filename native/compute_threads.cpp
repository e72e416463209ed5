#include "compute_threads.h"

#ifdef GGUF_SERVE_LIBGOMP
#include <omp.h>
#endif

namespace gguf_serve {

void ReleaseComputeThreads() {
#ifdef GGUF_SERVE_LIBGOMP
  // libgomp's pause ends the pool of the calling thread only and lowers its count of managed threads.
  omp_pause_resource(omp_pause_soft, omp_get_initial_device());
#endif
}

}  // namespace gguf_serve
