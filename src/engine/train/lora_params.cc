#include "engine/train/lora_params.h"

#include <boost/json.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "engine/formats/safetensors.h"
#include "engine/ops/ops.h"

namespace iris::train {

namespace fs = std::filesystem;

namespace {

std::pair<int64_t, int64_t> OutIn(const model::TextConfig& c, model::LoraSite site) {
  const int64_t d = c.hidden_size, f = c.intermediate_size;
  const int64_t qd = int64_t{c.num_attention_heads} * c.head_dim;
  const int64_t kvd = int64_t{c.num_key_value_heads} * c.head_dim;
  switch (site) {
    case model::LoraSite::kTextQ:
      return {qd, d};
    case model::LoraSite::kTextK:
    case model::LoraSite::kTextV:
      return {kvd, d};
    case model::LoraSite::kTextO:
      return {d, qd};
    case model::LoraSite::kTextGate:
    case model::LoraSite::kTextUp:
      return {f, d};
    case model::LoraSite::kTextDown:
      return {d, f};
    default:
      return {0, 0};
  }
}

std::string F32Bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// Writes `text` to path via a temporary file and a rename (never half a file).
Status WriteAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();  // (a failed flush shows only after the close)
    if (out.fail()) return DataLoss("cannot write " + tmp + " (disk full?)");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Internal("cannot rename " + tmp + ": " + ec.message());
  return OkStatus();
}

}  // namespace

Result<LoraParams> LoraParams::Create(const model::TextConfig& config, const LoraShape& shape,
                                      uint64_t seed) {
  if (shape.rank < 1 || shape.rank > 1024) {
    return InvalidArgument("--rank must be in [1, 1024], got " + std::to_string(shape.rank));
  }
  if (!std::isfinite(shape.alpha) || shape.alpha <= 0) {
    return InvalidArgument("--alpha must be a positive number");
  }
  LoraParams p;
  p.shape_ = shape;
  std::vector<const TrainTarget*> targets;
  if (shape.targets.empty()) {
    for (const TrainTarget& t : kTrainTargets) targets.push_back(&t);
  } else {
    for (const std::string& name : shape.targets) {
      const TrainTarget* found = nullptr;
      for (const TrainTarget& t : kTrainTargets) {
        if (t.name == name) found = &t;
      }
      if (found == nullptr) {
        std::string known;
        for (const TrainTarget& t : kTrainTargets)
          known += (known.empty() ? "" : ", ") + std::string(t.name);
        return InvalidArgument("unknown target module '" + name + "' (the text model has " + known +
                               ")");
      }
      if (std::find(targets.begin(), targets.end(), found) == targets.end()) {
        targets.push_back(found);
      }
    }
  }
  p.shape_.targets.clear();
  for (const TrainTarget* t : targets) p.shape_.targets.emplace_back(t->name);
  std::mt19937_64 rng(seed);
  for (size_t layer = 0; layer < static_cast<size_t>(config.num_hidden_layers); ++layer) {
    for (const TrainTarget* t : targets) {
      LoraParam lp;
      lp.site = t->site;
      lp.layer = layer;
      lp.rank = shape.rank;
      std::tie(lp.out, lp.in) = OutIn(config, t->site);
      lp.module = "model.text_model.layers." + std::to_string(layer) + "." + std::string(t->path);
      const size_t na = static_cast<size_t>(lp.rank * lp.in),
                   nb = static_cast<size_t>(lp.out * lp.rank);
      // kaiming_uniform_(a=√5): bound = √(6 / ((1 + 5)·fan_in)) = 1/√fan_in.
      const double bound = 1.0 / std::sqrt(static_cast<double>(lp.in));
      std::uniform_real_distribution<double> uniform(-bound, bound);
      lp.a.resize(na);
      for (float& x : lp.a) x = static_cast<float>(uniform(rng));
      lp.b.assign(nb, 0.0f);
      lp.grad_a.assign(na, 0.0f);
      lp.grad_b.assign(nb, 0.0f);
      lp.m_a.assign(na, 0.0f);
      lp.v_a.assign(na, 0.0f);
      lp.m_b.assign(nb, 0.0f);
      lp.v_b.assign(nb, 0.0f);
      auto& idx = p.index_[static_cast<size_t>(t->site)];
      if (idx.size() <= layer) idx.resize(layer + 1, -1);
      idx[layer] = static_cast<int32_t>(p.params_.size());
      p.params_.push_back(std::move(lp));
    }
  }
  return p;
}

size_t LoraParams::num_parameters() const {
  size_t n = 0;
  for (const LoraParam& p : params_) n += p.a.size() + p.b.size();
  return n;
}

void LoraParams::ZeroGrad() {
  for (LoraParam& p : params_) {
    std::fill(p.grad_a.begin(), p.grad_a.end(), 0.0f);
    std::fill(p.grad_b.begin(), p.grad_b.end(), 0.0f);
  }
}

double LoraParams::GradNorm() const {
  double sum = 0;
  for (const LoraParam& p : params_) {
    for (float g : p.grad_a) sum += static_cast<double>(g) * g;
    for (float g : p.grad_b) sum += static_cast<double>(g) * g;
  }
  return std::sqrt(sum);
}

void LoraParams::ScaleGrad(float factor) {
  for (LoraParam& p : params_) {
    for (float& g : p.grad_a) g *= factor;
    for (float& g : p.grad_b) g *= factor;
  }
}

void LoraParams::AdamW(double lr, int64_t t, double beta1, double beta2, double eps,
                       double weight_decay) {
  const double c1 = 1.0 - std::pow(beta1, static_cast<double>(t));
  const double c2 = 1.0 - std::pow(beta2, static_cast<double>(t));
  const double step = lr / c1;
  const double sqrt_c2 = std::sqrt(c2);
  auto update = [&](std::vector<float>& w, const std::vector<float>& g, std::vector<float>& m,
                    std::vector<float>& v) {
    for (size_t i = 0; i < w.size(); ++i) {
      float x = w[i];
      x *= static_cast<float>(1.0 - lr * weight_decay);
      m[i] = static_cast<float>(beta1) * m[i] + static_cast<float>(1.0 - beta1) * g[i];
      v[i] = static_cast<float>(beta2) * v[i] + static_cast<float>(1.0 - beta2) * g[i] * g[i];
      const double denom = std::sqrt(static_cast<double>(v[i])) / sqrt_c2 + eps;
      x -= static_cast<float>(step * m[i] / denom);
      w[i] = x;
    }
  };
  for (LoraParam& p : params_) {
    update(p.a, p.grad_a, p.m_a, p.v_a);
    update(p.b, p.grad_b, p.m_b, p.v_b);
  }
}

Status LoraParams::SavePeft(const std::string& dir, const std::string& base_model) const {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal("cannot create " + dir + ": " + ec.message());
  std::vector<formats::TensorToWrite> tensors;
  for (const LoraParam& p : params_) {
    const std::string key = "base_model.model." + p.module;
    tensors.push_back({key + ".lora_A.weight", tensor::DType::kF32, {p.rank, p.in}, F32Bytes(p.a)});
    tensors.push_back(
        {key + ".lora_B.weight", tensor::DType::kF32, {p.out, p.rank}, F32Bytes(p.b)});
  }
  IRIS_RETURN_IF_ERROR(formats::WriteSafetensors(dir + "/adapter_model.safetensors.tmp", tensors));
  fs::rename(dir + "/adapter_model.safetensors.tmp", dir + "/adapter_model.safetensors", ec);
  if (ec) return Internal("cannot write " + dir + "/adapter_model.safetensors: " + ec.message());
  std::string names;
  for (const std::string& t : shape_.targets) names += (names.empty() ? "" : "|") + t;
  // A regular expression (PEFT full-matches it against module names): the text model's
  // layers only, never the vision tower's q/k/v_proj of the same names.
  const std::string pattern =
      "model\\.text_model\\.layers\\.\\d+\\.(self_attn|mlp)\\.(" + names + ")";
  boost::json::object c;
  c["peft_type"] = "LORA";
  c["task_type"] = nullptr;
  c["base_model_name_or_path"] = base_model;
  c["r"] = shape_.rank;
  c["lora_alpha"] = shape_.alpha;
  c["lora_dropout"] = 0.0;
  c["target_modules"] = pattern;
  c["bias"] = "none";
  c["use_rslora"] = false;
  c["use_dora"] = false;
  c["fan_in_fan_out"] = false;
  c["init_lora_weights"] = true;
  c["inference_mode"] = true;
  c["modules_to_save"] = nullptr;
  c["rank_pattern"] = boost::json::object{};
  c["alpha_pattern"] = boost::json::object{};
  c["layers_to_transform"] = nullptr;
  c["layers_pattern"] = nullptr;
  c["revision"] = nullptr;
  return WriteAtomically(dir + "/adapter_config.json", boost::json::serialize(c) + "\n");
}

Status LoraParams::SaveState(const std::string& path, const std::string& state) const {
  std::vector<formats::TensorToWrite> tensors;
  for (const LoraParam& p : params_) {
    const std::vector<int64_t> sa = {p.rank, p.in}, sb = {p.out, p.rank};
    for (const auto& [suffix, data, shape] :
         {std::tuple{".a", &p.a, sa}, std::tuple{".b", &p.b, sb}, std::tuple{".m_a", &p.m_a, sa},
          std::tuple{".v_a", &p.v_a, sa}, std::tuple{".m_b", &p.m_b, sb},
          std::tuple{".v_b", &p.v_b, sb}}) {
      tensors.push_back({p.module + suffix, tensor::DType::kF32, shape, F32Bytes(*data)});
    }
  }
  IRIS_RETURN_IF_ERROR(
      formats::WriteSafetensors(path + ".tmp", tensors, {{"format", "pt"}, {"iris_state", state}}));
  std::error_code ec;
  fs::rename(path + ".tmp", path, ec);
  if (ec) return Internal("cannot write " + path + ": " + ec.message());
  return OkStatus();
}

Status LoraParams::LoadState(const std::string& path,
                             const std::function<Status(const std::string& state)>& accept) {
  IRIS_ASSIGN_OR_RETURN(formats::SafetensorsFile file, formats::SafetensorsFile::Open(path));
  auto state = file.metadata().find("iris_state");
  if (state == file.metadata().end()) return DataLoss(path + ": not a checkpoint iris wrote");
  IRIS_RETURN_IF_ERROR(accept(state->second));
  for (LoraParam& p : params_) {
    for (const auto& [suffix, data] :
         {std::pair{".a", &p.a}, std::pair{".b", &p.b}, std::pair{".m_a", &p.m_a},
          std::pair{".v_a", &p.v_a}, std::pair{".m_b", &p.m_b}, std::pair{".v_b", &p.v_b}}) {
      auto it = file.tensors().find(p.module + suffix);
      if (it == file.tensors().end() || it->second.view.dtype != tensor::DType::kF32 ||
          static_cast<size_t>(it->second.view.num_elements()) != data->size()) {
        return DataLossIn(
            path,
            p.module + suffix + " is missing or of another shape (a checkpoint of another run?)");
      }
      std::memcpy(data->data(), it->second.view.data, data->size() * sizeof(float));
    }
  }
  if (file.tensors().size() != params_.size() * 6) {
    return DataLoss(path +
                    ": holds other layers than this run adapts (another --rank or "
                    "--target-modules?)");
  }
  return OkStatus();
}

}  // namespace iris::train
