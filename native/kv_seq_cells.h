#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "llama.h"

namespace gguf_serve {

// One sequence's KV cells as llama.cpp's per-sequence state holds them
// (llama_state_seq_get_data: a magic, the sequence id, then the KV cache's streams; the one with
// cells holds each cell's position, then each layer's K rows, then each layer's V rows).
// Parsed so that cells can be cut by position and written out after another's: the host prompt
// cache keeps a prefix
// many states share (a system prompt) once. Only the plain layout is taken (one position and one
// sequence per cell, a K and a V row per cell and layer); any other state (V transposed, M-RoPE
// or other per-cell extras, recurrent or sliding-window memory, a layout this code does not
// know) fails Parse, and the caller keeps it whole.
class KvSeqCells {
 public:
  // The cells at positions in [begin, end); null when `state` is not in the plain layout (or not
  // whole: every byte must be accounted for).
  static std::unique_ptr<KvSeqCells> Parse(const std::vector<uint8_t>& state, llama_pos begin, llama_pos end);

  // The cells whose positions are in [begin, end), in the same layout.
  KvSeqCells Slice(llama_pos begin, llama_pos end) const;
  // Writes into *to a state llama_state_seq_set_data takes: `head`'s cells (if given) then these.
  // False if the two layouts differ.
  bool Serialize(const KvSeqCells* head, std::vector<uint8_t>* to) const;

  size_t bytes() const;

 private:
  struct Layer {
    int32_t k_type = 0;
    uint64_t k_row = 0;  // bytes of one cell's K
    int32_t v_type = 0;
    uint64_t v_row = 0;  // bytes of one cell's V
    std::vector<uint8_t> k, v;  // a row per cell, in the cells' order
  };

  bool SameLayout(const KvSeqCells& other) const;

  uint32_t magic_ = 0;
  int32_t seq_id_ = 0;
  uint32_t n_stream_ = 0;
  std::vector<int32_t> pos_;
  std::vector<int32_t> cell_seq_;  // each cell's sequence id as saved (read back but not used)
  std::vector<Layer> layers_;
};

}  // namespace gguf_serve
