#pragma once
#include <string>
#include <vector>

namespace gguf_serve {

// Turns a generation's token pieces into text safe to emit: never a broken UTF-8 character and
// never any part of a stop string. Bytes are held back only while they could still be the start
// of a stop string or the head of an unfinished character.
class TextStream {
 public:
  explicit TextStream(std::vector<std::string> stops = {});

  struct Step {
    std::string emit;     // text that can go out now
    int stop_index = -1;  // >= 0: this stop string matched; generation must end
  };

  Step Push(const std::string& piece);
  // End of generation without a stop match: everything held goes out.
  std::string Flush();

 private:
  size_t HeldForStops() const;

  std::vector<std::string> stops_;
  std::string held_;
};

// Bytes at the end of `text` that begin a UTF-8 character not yet complete.
size_t IncompleteUtf8Tail(const std::string& text);

}  // namespace gguf_serve
