#include "chat_output_parser.h"

#include <random>
#include <stdexcept>

#include "errors.h"
#include "js_options.h"

namespace gguf_serve {
namespace {

std::string NewToolCallId() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string id = "call_";
  for (int i = 0; i < 24; i++) id += alphabet[rng() % (sizeof(alphabet) - 1)];
  return id;
}

common_json ToolCallJson(const common_chat_tool_call& call) {
  common_json j = common_json::object();
  j["name"] = call.name;
  j["arguments"] = call.arguments;
  j["id"] = call.id;
  return j;
}

common_json MessageJson(const common_chat_msg& msg) {
  common_json j = common_json::object();
  j["content"] = msg.content;
  j["reasoningContent"] = msg.reasoning_content;
  common_json calls = common_json::array();
  for (const auto& call : msg.tool_calls) calls.push_back(ToolCallJson(call));
  j["toolCalls"] = calls;
  return j;
}

}  // namespace

Napi::Function ChatOutputParser::Define(Napi::Env env) {
  return DefineClass(env, "ChatOutputParser", {InstanceMethod<&ChatOutputParser::Update>("update")});
}

ChatOutputParser::ChatOutputParser(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ChatOutputParser>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) Throw(env, kCodeInvalidArgument, "new ChatOutputParser(options)");
  Napi::Object o = info[0].As<Napi::Object>();
  const int32_t format = IntOption(env, o, "formatId", 0, 0, COMMON_CHAT_FORMAT_COUNT - 1);
  params_.format = static_cast<common_chat_format>(format);
  if (o.Has("generationPrompt") && o.Get("generationPrompt").IsString()) {
    params_.generation_prompt = o.Get("generationPrompt").As<Napi::String>();
  }
  const std::string reasoning = o.Has("reasoningFormat") && o.Get("reasoningFormat").IsString()
                                    ? std::string(o.Get("reasoningFormat").As<Napi::String>())
                                    : std::string("auto");
  params_.reasoning_format = common_reasoning_format_from_name(reasoning);
  params_.reasoning_in_content = BoolOption(o, "reasoningInContent", false);
  params_.parse_tool_calls = BoolOption(o, "parseToolCalls", true);
  if (o.Has("parser") && o.Get("parser").IsString()) {
    const std::string parser = o.Get("parser").As<Napi::String>();
    try {
      if (!parser.empty()) params_.parser.load(parser);
    } catch (const std::exception& e) {
      Throw(env, kCodeInvalidArgument, std::string("chat output parser does not load: ") + e.what());
    }
  }
}

Napi::Value ChatOutputParser::Update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsBoolean()) {
    Throw(env, kCodeInvalidArgument, "update(text, isPartial)");
  }
  const std::string text = info[0].As<Napi::String>();
  const bool partial = info[1].As<Napi::Boolean>().Value();
  common_json out = common_json::object();
  common_json diffs = common_json::array();
  try {
    common_chat_msg next = common_chat_parse(text, partial, params_);
    if (!next.empty() || !partial) {
      next.set_tool_call_ids(tool_call_ids_, NewToolCallId);
      for (const auto& d : common_chat_msg_diff::compute_diffs(message_, next)) {
        common_json j = common_json::object();
        j["reasoningContent"] = d.reasoning_content_delta;
        j["content"] = d.content_delta;
        j["toolCallIndex"] = d.tool_call_index == std::string::npos ? -1 : static_cast<int>(d.tool_call_index);
        j["toolCall"] = ToolCallJson(d.tool_call_delta);
        diffs.push_back(j);
      }
      message_ = std::move(next);
    }
  } catch (const std::exception& e) {
    // A partial answer the parser cannot read yet waits for more text; a final one is an error
    // the caller reports (the model did not follow its format).
    if (!partial) Throw(env, kCodeEngine, std::string("the answer does not parse in the template's format: ") + e.what());
  }
  out["message"] = MessageJson(message_);
  out["diffs"] = diffs;
  return Napi::String::New(env, out.dump());
}

}  // namespace gguf_serve
