#include "model.h"

#include <vector>

#include "addon_data.h"
#include "errors.h"
#include "model_loader.h"
#include "vocab_text.h"

namespace gguf_serve {

Napi::Function Model::Define(Napi::Env env) {
  return DefineClass(env, "Model",
                     {
                         StaticMethod<&Model::Load>("load"),
                         InstanceMethod<&Model::Metadata>("metadata"),
                         InstanceMethod<&Model::Tokenize>("tokenize"),
                         InstanceMethod<&Model::Detokenize>("detokenize"),
                         InstanceMethod<&Model::TokenPiece>("tokenPiece"),
                         InstanceMethod<&Model::Dispose>("dispose"),
                         InstanceAccessor<&Model::IsDisposed>("disposed"),
                     });
}

Model::Model(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Model>(info) {
  // Only Model.load() may construct: it passes the loaded handle as an External.
  if (info.Length() < 2 || !info[0].IsExternal() || !info[1].IsString()) {
    Throw(info.Env(), kCodeInvalidArgument, "Model cannot be constructed directly: use Model.load(path)");
  }
  handle_ = *info[0].As<Napi::External<ModelHandle>>().Data();
  path_ = info[1].As<Napi::String>();
  cleanup_hook_ = info.Env().AddCleanupHook(std::function<void()>([this]() {
    has_cleanup_hook_ = false;
    handle_.reset();
  }));
  has_cleanup_hook_ = true;
}

Model::~Model() {
  if (has_cleanup_hook_) cleanup_hook_.Remove(Env());
}

Napi::Object Model::NewInstance(Napi::Env env, ModelHandle handle, const std::string& path) {
  ModelHandle holder = std::move(handle);
  auto external = Napi::External<ModelHandle>::New(env, &holder);
  return GetAddonData(env)->model_constructor.New({external, Napi::String::New(env, path)});
}

Model* Model::FromValue(Napi::Env env, Napi::Value value) {
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(GetAddonData(env)->model_constructor.Value())) {
    Throw(env, kCodeInvalidArgument, "expected a Model");
  }
  Model* model = Model::Unwrap(value.As<Napi::Object>());
  model->Checked(env);
  return model;
}

llama_model* Model::Checked(Napi::Env env) const {
  if (!handle_) Throw(env, kCodeDisposed, "the model has been disposed");
  return handle_.get();
}

Napi::Value Model::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) Throw(env, kCodeInvalidArgument, "Model.load: path must be a string");
  ModelLoader::Options options = ModelLoader::Options::FromJs(env, info[0].As<Napi::String>(), info[1]);
  Napi::Function on_progress;
  if (info.Length() > 2 && info[2].IsFunction()) on_progress = info[2].As<Napi::Function>();
  return ModelLoader::Start(env, options, on_progress);
}

namespace {

// llama.cpp's metadata getters write into a caller's buffer and return the full length: read
// into a small one, and again into one of the right size when it was too small.
template <typename Get>
std::string ReadMeta(Get get, bool* found) {
  char small[256];
  const int32_t n = get(small, sizeof small);
  if (found) *found = n >= 0;
  if (n < 0) return "";
  if (static_cast<size_t>(n) < sizeof small) return std::string(small, n);
  std::string big(n + 1, '\0');
  get(big.data(), big.size());
  big.resize(n);
  return big;
}

}  // namespace

std::string MetaString(const llama_model* model, const char* key, bool* found) {
  return ReadMeta([&](char* buf, size_t size) { return llama_model_meta_val_str(model, key, buf, size); }, found);
}

namespace {

std::string MetaByIndex(int32_t (*get)(const llama_model*, int32_t, char*, size_t), const llama_model* model,
                        int32_t i) {
  return ReadMeta([&](char* buf, size_t size) { return get(model, i, buf, size); }, nullptr);
}

const char* VocabTypeName(enum llama_vocab_type type) {
  switch (type) {
    case LLAMA_VOCAB_TYPE_NONE: return "none";
    case LLAMA_VOCAB_TYPE_SPM: return "spm";
    case LLAMA_VOCAB_TYPE_BPE: return "bpe";
    case LLAMA_VOCAB_TYPE_WPM: return "wpm";
    case LLAMA_VOCAB_TYPE_UGM: return "ugm";
    case LLAMA_VOCAB_TYPE_RWKV: return "rwkv";
    default: return "unknown";
  }
}

Napi::Value TokenOrNull(Napi::Env env, llama_token token) {
  return token == LLAMA_TOKEN_NULL ? env.Null() : Napi::Number::New(env, token);
}

bool BoolOption(const Napi::CallbackInfo& info, size_t index, bool fallback) {
  return info.Length() > index && info[index].IsBoolean() ? info[index].As<Napi::Boolean>().Value() : fallback;
}

}  // namespace

Napi::Value Model::Metadata(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const llama_model* model = Checked(env);
  const llama_vocab* v = vocab();
  Napi::Object out = Napi::Object::New(env);
  bool has_name = false;
  std::string name = MetaString(model, "general.name", &has_name);
  char desc[256];
  llama_model_desc(model, desc, sizeof desc);
  const char* tmpl = llama_model_chat_template(model, nullptr);

  out.Set("architecture", MetaString(model, "general.architecture"));
  out.Set("name", has_name ? Napi::Value(Napi::String::New(env, name)) : env.Null());
  out.Set("description", desc);
  out.Set("parameterCount", static_cast<double>(llama_model_n_params(model)));
  out.Set("sizeBytes", static_cast<double>(llama_model_size(model)));
  out.Set("contextLengthTrained", llama_model_n_ctx_train(model));
  out.Set("embeddingSize", llama_model_n_embd(model));
  out.Set("layerCount", llama_model_n_layer(model));
  // llama.cpp aborts on per-layer queries of a model without layers (vocabulary-only files).
  const bool has_layers = llama_model_n_layer(model) > 0;
  out.Set("headCount", has_layers ? llama_model_n_head(model) : 0);
  out.Set("headCountKv", has_layers ? llama_model_n_head_kv(model) : 0);
  out.Set("vocabSize", llama_vocab_n_tokens(v));
  out.Set("vocabType", VocabTypeName(llama_vocab_type(v)));
  out.Set("bos", TokenOrNull(env, llama_vocab_bos(v)));
  out.Set("eos", TokenOrNull(env, llama_vocab_eos(v)));
  out.Set("eot", TokenOrNull(env, llama_vocab_eot(v)));
  out.Set("addBos", llama_vocab_get_add_bos(v));
  out.Set("chatTemplate", tmpl ? Napi::Value(Napi::String::New(env, tmpl)) : env.Null());
  out.Set("hasEncoder", llama_model_has_encoder(model));
  out.Set("hasDecoder", llama_model_has_decoder(model));

  Napi::Object kv = Napi::Object::New(env);
  const int32_t count = llama_model_meta_count(model);
  for (int32_t i = 0; i < count; i++) {
    kv.Set(MetaByIndex(llama_model_meta_key_by_index, model, i),
           MetaByIndex(llama_model_meta_val_str_by_index, model, i));
  }
  out.Set("kv", kv);
  return out;
}

Napi::Value Model::Tokenize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Checked(env);
  if (info.Length() < 1 || !info[0].IsString()) Throw(env, kCodeInvalidArgument, "tokenize: text must be a string");
  std::vector<llama_token> tokens;
  try {
    tokens = TokenizeText(vocab(), info[0].As<Napi::String>(), BoolOption(info, 1, true), BoolOption(info, 2, false));
  } catch (const std::exception& e) {
    Throw(env, kCodeEngine, std::string("tokenize: ") + e.what());
  }
  Napi::Int32Array out = Napi::Int32Array::New(env, tokens.size());
  std::copy(tokens.begin(), tokens.end(), out.Data());
  return out;
}

// Token ids from a JS array or Int32Array, checked against the vocabulary (llama.cpp would
// index out of bounds on a bad id).
std::vector<llama_token> TokensFromValue(Napi::Env env, Napi::Value value, const llama_vocab* vocab, const char* what) {
  const int32_t n_vocab = llama_vocab_n_tokens(vocab);
  std::vector<llama_token> tokens;
  auto check = [&](double id) {
    if (!(id >= 0 && id < n_vocab) || id != static_cast<int32_t>(id)) {
      Throw(env, kCodeInvalidArgument, std::string(what) + ": token id " + std::to_string(id) +
                                           " is not in the vocabulary (0.." + std::to_string(n_vocab - 1) + ")");
    }
    tokens.push_back(static_cast<llama_token>(id));
  };
  if (value.IsTypedArray() && value.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array) {
    Napi::Int32Array arr = value.As<Napi::Int32Array>();
    tokens.reserve(arr.ElementLength());
    for (size_t i = 0; i < arr.ElementLength(); i++) check(arr[i]);
  } else if (value.IsArray()) {
    Napi::Array arr = value.As<Napi::Array>();
    tokens.reserve(arr.Length());
    for (uint32_t i = 0; i < arr.Length(); i++) {
      Napi::Value item = arr.Get(i);
      if (!item.IsNumber()) Throw(env, kCodeInvalidArgument, std::string(what) + ": token ids must be integers");
      check(item.As<Napi::Number>().DoubleValue());
    }
  } else {
    Throw(env, kCodeInvalidArgument, std::string(what) + ": expected an array of token ids");
  }
  return tokens;
}

Napi::Value Model::Detokenize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Checked(env);
  std::vector<llama_token> tokens = TokensFromValue(env, info.Length() > 0 ? info[0] : env.Undefined(), vocab(), "detokenize");
  try {
    return Napi::String::New(env, DetokenizeTokens(vocab(), tokens, BoolOption(info, 1, false), BoolOption(info, 2, false)));
  } catch (const std::exception& e) {
    Throw(env, kCodeEngine, std::string("detokenize: ") + e.what());
  }
}

Napi::Value Model::TokenPiece(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Checked(env);
  Napi::Array one = Napi::Array::New(env, 1);
  one.Set(0u, info.Length() > 0 ? info[0] : env.Undefined());
  std::vector<llama_token> token = TokensFromValue(env, one, vocab(), "tokenPiece");
  std::string piece = TokenToPiece(vocab(), token[0], BoolOption(info, 1, false));
  // A piece may be part of a UTF-8 character: hand back its raw bytes.
  return Napi::Buffer<char>::Copy(env, piece.data(), piece.size());
}

Napi::Value Model::Dispose(const Napi::CallbackInfo& info) {
  handle_.reset();
  return info.Env().Undefined();
}

Napi::Value Model::IsDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !handle_);
}

}  // namespace gguf_serve
