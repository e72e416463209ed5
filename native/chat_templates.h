#pragma once
#include <napi.h>

#include <string>

#include "chat.h"  // llama.cpp's common/chat.h
#include "model.h"

namespace gguf_serve {

// JS class ChatTemplates: a model's chat template (or one given instead: a request's, an
// instruction template's) as llama.cpp's common chat code reads it. apply() renders messages with
// tools, a JSON schema and reasoning options, and says how the model's answer is written: the
// tool-call format detected from the template, the grammar that constrains it (lazy, with
// triggers, when tool calls are optional), the parser for the answer, stop strings.
// Requests and results cross as JSON text (OpenAI's shapes), parsed by llama.cpp's own code.
class ChatTemplates : public Napi::ObjectWrap<ChatTemplates> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit ChatTemplates(const Napi::CallbackInfo& info);  // (model, {template?: string})

 private:
  Napi::Value Apply(const Napi::CallbackInfo& info);  // (requestJson) -> resultJson
  Napi::Value Info(const Napi::CallbackInfo& info);

  ModelHandle model_;
  common_chat_templates_ptr templates_;
};

// jsonSchemaToGrammar(schemaJson): GBNF for a JSON schema (llama.cpp's converter); throws with
// the converter's reasons when it cannot convert.
Napi::Value JsonSchemaToGrammarJs(const Napi::CallbackInfo& info);

}  // namespace gguf_serve
