#include "kv_seq_cells.h"

#include <cstring>

#include "ggml.h"

namespace gguf_serve {

namespace {

// Reads fixed-size values off a byte buffer; any read past the end fails the whole parse.
class Reader {
 public:
  explicit Reader(const std::vector<uint8_t>& data) : data_(data) {}
  template <typename T>
  bool Get(T* out) {
    if (data_.size() - at_ < sizeof(T)) return false;
    std::memcpy(out, data_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return true;
  }
  // `count` rows of `row` bytes; those whose index is in `keep` are appended to out.
  bool Rows(size_t count, uint64_t row, const std::vector<size_t>& keep, std::vector<uint8_t>* out) {
    if ((data_.size() - at_) / row < count) return false;
    out->reserve(keep.size() * row);
    for (size_t i : keep) out->insert(out->end(), data_.begin() + static_cast<std::ptrdiff_t>(at_ + i * row), data_.begin() + static_cast<std::ptrdiff_t>(at_ + (i + 1) * row));
    at_ += count * row;
    return true;
  }
  bool AtEnd() const { return at_ == data_.size(); }

 private:
  const std::vector<uint8_t>& data_;
  size_t at_ = 0;
};

template <typename T>
void Put(std::vector<uint8_t>* out, T value) {
  const auto* p = reinterpret_cast<const uint8_t*>(&value);
  out->insert(out->end(), p, p + sizeof(T));
}

void PutBytes(std::vector<uint8_t>* out, const uint8_t* p, size_t n) { out->insert(out->end(), p, p + n); }

constexpr uint32_t kMaxLayers = 1 << 12;
constexpr uint64_t kMaxRowBytes = uint64_t{1} << 28;

bool ValidType(int32_t type) { return type >= 0 && type < GGML_TYPE_COUNT; }

}  // namespace

std::unique_ptr<KvSeqCells> KvSeqCells::Parse(const std::vector<uint8_t>& state, llama_pos begin, llama_pos end) {
  auto out = std::make_unique<KvSeqCells>();
  Reader r(state);
  if (!r.Get(&out->magic_) || !r.Get(&out->seq_id_) || !r.Get(&out->n_stream_)) return nullptr;
  if (out->n_stream_ == 0 || out->n_stream_ > (1u << 16)) return nullptr;
  bool found = false;
  for (uint32_t s = 0; s < out->n_stream_; s++) {
    uint32_t count = 0;
    if (!r.Get(&count)) return nullptr;
    if (count == 0) continue;
    if (found) return nullptr;  // one sequence lives in one stream
    found = true;
    std::vector<size_t> keep;  // the cells in [begin, end), the only ones copied
    for (uint32_t i = 0; i < count; i++) {
      int32_t pos = 0, seq = 0;
      uint32_t n_seq = 0;
      if (!r.Get(&pos) || !r.Get(&n_seq) || n_seq != 1 || !r.Get(&seq)) return nullptr;
      if (pos < begin || pos >= end) continue;
      keep.push_back(i);
      out->pos_.push_back(pos);
      out->cell_seq_.push_back(seq);
    }
    uint32_t n_layer = 0, v_trans = 0;
    // (V transposed, as without flash attention, is left whole: no test model here writes it.)
    if (!r.Get(&v_trans) || v_trans != 0 || !r.Get(&n_layer) || n_layer == 0 || n_layer > kMaxLayers) return nullptr;
    out->layers_.resize(n_layer);
    for (Layer& l : out->layers_) {
      if (!r.Get(&l.k_type) || !ValidType(l.k_type) || !r.Get(&l.k_row) || l.k_row == 0 || l.k_row > kMaxRowBytes) return nullptr;
      if (!r.Rows(count, l.k_row, keep, &l.k)) return nullptr;
    }
    for (Layer& l : out->layers_) {
      if (!r.Get(&l.v_type) || !ValidType(l.v_type) || !r.Get(&l.v_row) || l.v_row == 0 || l.v_row > kMaxRowBytes) return nullptr;
      if (!r.Rows(count, l.v_row, keep, &l.v)) return nullptr;
    }
  }
  if (!found || !r.AtEnd()) return nullptr;
  return out;
}

KvSeqCells KvSeqCells::Slice(llama_pos begin, llama_pos end) const {
  std::vector<size_t> keep;
  for (size_t i = 0; i < pos_.size(); i++) {
    if (pos_[i] >= begin && pos_[i] < end) keep.push_back(i);
  }
  KvSeqCells out;
  out.magic_ = magic_;
  out.seq_id_ = seq_id_;
  out.n_stream_ = n_stream_;
  for (size_t i : keep) {
    out.pos_.push_back(pos_[i]);
    out.cell_seq_.push_back(cell_seq_[i]);
  }
  out.layers_.reserve(layers_.size());
  for (const Layer& l : layers_) {
    Layer o;
    o.k_type = l.k_type;
    o.k_row = l.k_row;
    o.v_type = l.v_type;
    o.v_row = l.v_row;
    for (size_t i : keep) {
      PutBytes(&o.k, l.k.data() + i * l.k_row, l.k_row);
      PutBytes(&o.v, l.v.data() + i * l.v_row, l.v_row);
    }
    out.layers_.push_back(std::move(o));
  }
  return out;
}

bool KvSeqCells::SameLayout(const KvSeqCells& other) const {
  if (magic_ != other.magic_ || n_stream_ != other.n_stream_ || layers_.size() != other.layers_.size()) return false;
  for (size_t i = 0; i < layers_.size(); i++) {
    const Layer& a = layers_[i];
    const Layer& b = other.layers_[i];
    if (a.k_type != b.k_type || a.k_row != b.k_row || a.v_type != b.v_type || a.v_row != b.v_row) return false;
  }
  return true;
}

bool KvSeqCells::Serialize(const KvSeqCells* head, std::vector<uint8_t>* to) const {
  if (head && !head->SameLayout(*this)) return false;
  const KvSeqCells empty;
  const KvSeqCells& a = head ? *head : empty;
  std::vector<uint8_t>& out = *to;
  out.clear();  // (its capacity stays: a buffer used again is not faulted in again)
  out.reserve(a.bytes() + bytes() + 64);
  Put(&out, magic_);
  Put(&out, seq_id_);
  Put(&out, n_stream_);
  // The cells go in the first stream: llama.cpp reads them into the destination sequence's own.
  const size_t n = a.pos_.size() + pos_.size();
  Put(&out, static_cast<uint32_t>(n));
  if (n > 0) {
    for (const KvSeqCells* part : {&a, this}) {
      for (size_t i = 0; i < part->pos_.size(); i++) {
        Put(&out, part->pos_[i]);
        Put(&out, uint32_t{1});
        Put(&out, part->cell_seq_[i]);
      }
    }
    Put(&out, uint32_t{0});  // V not transposed
    Put(&out, static_cast<uint32_t>(layers_.size()));
    for (size_t li = 0; li < layers_.size(); li++) {
      Put(&out, layers_[li].k_type);
      Put(&out, layers_[li].k_row);
      if (head) PutBytes(&out, a.layers_[li].k.data(), a.layers_[li].k.size());
      PutBytes(&out, layers_[li].k.data(), layers_[li].k.size());
    }
    for (size_t li = 0; li < layers_.size(); li++) {
      Put(&out, layers_[li].v_type);
      Put(&out, layers_[li].v_row);
      if (head) PutBytes(&out, a.layers_[li].v.data(), a.layers_[li].v.size());
      PutBytes(&out, layers_[li].v.data(), layers_[li].v.size());
    }
  }
  for (uint32_t s = 1; s < n_stream_; s++) Put(&out, uint32_t{0});
  return true;
}

size_t KvSeqCells::bytes() const {
  size_t total = pos_.size() * 12;
  for (const Layer& l : layers_) total += l.k.size() + l.v.size();
  return total;
}

}  // namespace gguf_serve
