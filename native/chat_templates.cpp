#include "chat_templates.h"

#include <stdexcept>

#include "errors.h"
#include "json-schema-to-grammar.h"
#include "log.h"

namespace gguf_serve {
namespace {

const char* TriggerTypeName(common_grammar_trigger_type type) {
  switch (type) {
    case COMMON_GRAMMAR_TRIGGER_TYPE_TOKEN: return "token";
    case COMMON_GRAMMAR_TRIGGER_TYPE_WORD: return "word";
    case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN: return "pattern";
    case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN_FULL: return "pattern_full";
  }
  return "word";
}

common_chat_templates_inputs ReadInputs(const common_json& body) {
  common_chat_templates_inputs in;
  in.use_jinja = true;
  in.messages = common_chat_msgs_parse_oaicompat(body.value("messages", common_json::array()));
  const common_json tools = body.value("tools", common_json());
  if (!tools.is_null()) in.tools = common_chat_tools_parse_oaicompat(tools);
  in.tool_choice = common_chat_tool_choice_parse_oaicompat(body.value("tool_choice", std::string("auto")));
  in.parallel_tool_calls = body.value("parallel_tool_calls", false);
  const common_json schema = body.value("json_schema", common_json());
  if (!schema.is_null()) in.json_schema = schema.dump();
  in.grammar = body.value("grammar", std::string());
  in.add_generation_prompt = body.value("add_generation_prompt", true);
  in.reasoning_format = common_reasoning_format_from_name(body.value("reasoning_format", std::string("auto")));
  in.enable_thinking = body.value("enable_thinking", true);
  const common_json kwargs = body.value("chat_template_kwargs", common_json::object());
  for (auto it = kwargs.begin(); it != kwargs.end(); ++it) in.chat_template_kwargs[it.key()] = it.value().dump();
  return in;
}

common_json WriteParams(const common_chat_params& p) {
  common_json out = common_json::object();
  out["prompt"] = p.prompt;
  out["format"] = common_chat_format_name(p.format);
  out["formatId"] = static_cast<int>(p.format);
  out["grammar"] = p.grammar;
  out["grammarLazy"] = p.grammar_lazy;
  common_json triggers = common_json::array();
  for (const auto& t : p.grammar_triggers) {
    common_json j = common_json::object();
    j["type"] = TriggerTypeName(t.type);
    j["value"] = t.value;
    triggers.push_back(j);
  }
  out["grammarTriggers"] = triggers;
  out["preservedTokens"] = p.preserved_tokens;
  out["additionalStops"] = p.additional_stops;
  out["generationPrompt"] = p.generation_prompt;
  out["parser"] = p.parser;
  out["supportsThinking"] = p.supports_thinking;
  out["thinkingStartTag"] = p.thinking_start_tag;
  out["thinkingEndTags"] = p.thinking_end_tags;
  return out;
}

}  // namespace

Napi::Function ChatTemplates::Define(Napi::Env env) {
  return DefineClass(env, "ChatTemplates",
                     {InstanceMethod<&ChatTemplates::Apply>("apply"), InstanceMethod<&ChatTemplates::Info>("info")});
}

ChatTemplates::ChatTemplates(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ChatTemplates>(info) {
  Napi::Env env = info.Env();
  Model* model = Model::FromValue(env, info[0]);
  model_ = model->handle();
  std::string override_source;
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Object o = info[1].As<Napi::Object>();
    if (o.Has("template") && o.Get("template").IsString()) override_source = o.Get("template").As<Napi::String>();
  }
  TakeRecentErrors();
  try {
    templates_ = common_chat_templates_init(model_.get(), override_source);
  } catch (const std::exception& e) {
    Throw(env, kCodeInvalidArgument, std::string("the chat template does not parse: ") + e.what());
  }
  if (!templates_) Throw(env, kCodeInvalidArgument, "the chat template does not parse");
}

Napi::Value ChatTemplates::Apply(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) Throw(env, kCodeInvalidArgument, "apply(requestJson)");
  try {
    const common_json body = common_json::parse(info[0].As<Napi::String>());
    const common_chat_params params = common_chat_templates_apply(templates_.get(), ReadInputs(body));
    return Napi::String::New(env, WriteParams(params).dump());
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    Throw(env, kCodeInvalidArgument, e.what());
  }
}

Napi::Value ChatTemplates::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("source", common_chat_templates_source(templates_.get()));
  out.Set("explicit", common_chat_templates_was_explicit(templates_.get()));
  out.Set("supportsThinking", common_chat_templates_support_enable_thinking(templates_.get()));
  Napi::Object caps = Napi::Object::New(env);
  for (const auto& [name, value] : common_chat_templates_get_caps(templates_.get())) caps.Set(name, value);
  out.Set("caps", caps);
  return out;
}

Napi::Value JsonSchemaToGrammarJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) Throw(env, kCodeInvalidArgument, "jsonSchemaToGrammar(schemaJson)");
  try {
    return Napi::String::New(env, json_schema_to_grammar(common_json::parse(info[0].As<Napi::String>())));
  } catch (const std::exception& e) {
    Throw(env, kCodeInvalidArgument, e.what());
  }
}

}  // namespace gguf_serve
