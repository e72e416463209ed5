#pragma once
#include <napi.h>

#include <string>
#include <vector>

#include "chat.h"  // llama.cpp's common/chat.h

namespace gguf_serve {

// JS class ChatOutputParser: reads one answer as it grows, with the parser ChatTemplates.apply()
// chose for the template, into content, reasoning and tool calls (llama.cpp's common_chat_parse),
// and says what changed since the last call (common_chat_msg_diff), for streamed deltas.
class ChatOutputParser : public Napi::ObjectWrap<ChatOutputParser> {
 public:
  static Napi::Function Define(Napi::Env env);
  // ({formatId, parser, generationPrompt, reasoningFormat, reasoningInContent, parseToolCalls})
  explicit ChatOutputParser(const Napi::CallbackInfo& info);

 private:
  // (text so far, isPartial) -> JSON {message, diffs}; the text only ever grows.
  Napi::Value Update(const Napi::CallbackInfo& info);

  common_chat_parser_params params_;
  common_chat_msg message_;
  std::vector<std::string> tool_call_ids_;
};

}  // namespace gguf_serve
