// The inbound embeddings API (see embeddings.h).
#include "gateway/api/embeddings.h"

#include <bit>
#include <cmath>
#include <cstring>

#include "base/base64.h"
#include "base/json.h"
#include "gateway/api/json_fields.h"
#include "gateway/api/openai.h"

namespace iris::gateway::api {

namespace json = boost::json;

namespace {

Result<std::vector<int64_t>> TokenArray(const json::array& a, std::string_view path) {
  if (a.empty()) return FieldError(path, "must not be empty");
  if (a.size() > kMaxEmbeddingInputTokens) {
    return FieldError(path, "at most " + std::to_string(kMaxEmbeddingInputTokens) + " tokens");
  }
  std::vector<int64_t> tokens;
  tokens.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    IRIS_ASSIGN_OR_RETURN(int64_t t, AsInt(a[i], ElementPath(path, i)));
    if (t < 0) return FieldError(ElementPath(path, i), "a token id is not negative");
    tokens.push_back(t);
  }
  return tokens;
}

Status ParseInput(const json::value& v, EmbeddingRequest& out) {
  if (v.is_string()) {
    if (v.get_string().empty()) return FieldError("input", "must not be empty");
    out.texts.emplace_back(v.get_string());
    return OkStatus();
  }
  IRIS_ASSIGN_OR_RETURN(const json::array* a, AsArray(v, "input"));
  if (a->empty()) return FieldError("input", "must contain at least one input");
  if (a->size() > kMaxEmbeddingInputs) {
    return FieldError("input", "at most " + std::to_string(kMaxEmbeddingInputs) + " inputs, got " +
                                   std::to_string(a->size()));
  }
  if ((*a)[0].is_number()) {  // one input given as token ids
    IRIS_ASSIGN_OR_RETURN(std::vector<int64_t> tokens, TokenArray(*a, "input"));
    out.token_inputs.push_back(std::move(tokens));
    return OkStatus();
  }
  const bool strings = (*a)[0].is_string();
  for (size_t i = 0; i < a->size(); ++i) {
    const std::string path = ElementPath("input", i);
    if (strings) {
      IRIS_ASSIGN_OR_RETURN(std::string text, AsString((*a)[i], path));
      if (text.empty()) return FieldError(path, "must not be empty");
      out.texts.push_back(std::move(text));
    } else {
      IRIS_ASSIGN_OR_RETURN(const json::array* tokens, AsArray((*a)[i], path));
      IRIS_ASSIGN_OR_RETURN(std::vector<int64_t> t, TokenArray(*tokens, path));
      out.token_inputs.push_back(std::move(t));
    }
  }
  return OkStatus();
}

}  // namespace

Result<EmbeddingRequest> ParseEmbeddingRequest(std::string_view body) {
  IRIS_ASSIGN_OR_RETURN(json::value root, ParseJson(body, "request body"));
  if (!root.is_object()) return TypeError("request body", "a JSON object", root);
  const json::object& o = root.get_object();
  EmbeddingRequest req;
  IRIS_ASSIGN_OR_RETURN(req.model, RequiredString(o, "model", ""));
  if (req.model.empty()) return FieldError("model", "must not be empty");
  IRIS_ASSIGN_OR_RETURN(const json::value* input, RequireField(o, "input", ""));
  IRIS_RETURN_IF_ERROR(ParseInput(*input, req));
  if (const json::value* v = FindField(o, "encoding_format")) {
    IRIS_ASSIGN_OR_RETURN(std::string format, AsString(*v, "encoding_format"));
    if (format != "float" && format != "base64") {
      return FieldError("encoding_format",
                        "expected \"float\" or \"base64\", got " + Quote(format));
    }
    req.base64 = format == "base64";
  }
  if (const json::value* v = FindField(o, "dimensions")) {
    IRIS_ASSIGN_OR_RETURN(int64_t d, AsInt(*v, "dimensions"));
    if (d < 1 || d > 65536) return FieldError("dimensions", "must be between 1 and 65536");
    req.dimensions = d;
  }
  if (const json::value* v = FindField(o, "user")) {
    IRIS_ASSIGN_OR_RETURN(req.user, AsString(*v, "user"));
  }
  IRIS_RETURN_IF_ERROR(ParseOpenAIRoutingHints(o, req.routing));
  return req;
}

std::string EncodeEmbeddingResponse(const EmbeddingResponse& response, bool base64,
                                    const boost::json::object* iris,
                                    std::optional<double> cost_usd) {
  static_assert(std::endian::native == std::endian::little, "float32 LE is written as is");
  json::array data;
  data.reserve(response.vectors.size());
  for (size_t i = 0; i < response.vectors.size(); ++i) {
    const std::vector<float>& v = response.vectors[i];
    json::object item{{"object", "embedding"}, {"index", i}};
    if (base64) {
      item["embedding"] = Base64Encode(
          std::string_view(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
    } else {
      json::array values;
      values.reserve(v.size());
      for (float f : v) values.push_back(static_cast<double>(f));
      item["embedding"] = std::move(values);
    }
    data.push_back(std::move(item));
  }
  json::object usage{{"prompt_tokens", response.usage.input_tokens},
                     {"total_tokens", response.usage.input_tokens}};
  if (cost_usd) usage["cost"] = *cost_usd;
  json::object out{{"object", "list"},
                   {"data", std::move(data)},
                   {"model", response.model},
                   {"usage", std::move(usage)}};
  if (iris != nullptr) out["iris"] = *iris;
  return SerializeJson(out);
}

Result<std::vector<float>> DecodeEmbeddingVector(const boost::json::value& v,
                                                 std::string_view path) {
  std::vector<float> out;
  if (v.is_string()) {
    IRIS_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, Base64Decode(v.get_string()));
    if (bytes.size() % sizeof(float) != 0) {
      return DataLoss(std::string(path) + ": base64 embedding is not whole float32 values");
    }
    out.resize(bytes.size() / sizeof(float));
    std::memcpy(out.data(), bytes.data(), bytes.size());
    return out;
  }
  if (!v.is_array()) return DataLoss(std::string(path) + ": expected an array of numbers");
  const json::array& a = v.get_array();
  out.reserve(a.size());
  for (const json::value& x : a) {
    if (!x.is_number()) return DataLoss(std::string(path) + ": expected an array of numbers");
    const double d = x.to_number<double>();
    if (!std::isfinite(d)) return DataLoss(std::string(path) + ": a value is not finite");
    out.push_back(static_cast<float>(d));
  }
  return out;
}

}  // namespace iris::gateway::api
