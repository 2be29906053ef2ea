#include "engine/model/weights.h"

#include <algorithm>
#include <cstring>

#include "base/mapped_file.h"
#include "engine/kernels/kernels.h"
#include "engine/ops/ops.h"
#include "engine/tensor/quant.h"

namespace iris::model {
Result<uint8_t*> WeightMemory::Allocate(size_t bytes) {
  constexpr size_t kAlign = 64, kChunk = size_t{64} << 20;
  if (bytes > SIZE_MAX - kAlign) return ResourceExhausted("cannot allocate that much memory");
  bytes = (bytes + kAlign - 1) & ~(kAlign - 1);
  if (bytes >= kChunk / 4) {
    // A large piece gets a buffer of its own; the chunk small pieces come from stays open.
    IRIS_ASSIGN_OR_RETURN(AnonymousBuffer b, AnonymousBuffer::Allocate(bytes));
    uint8_t* p = b.data();
    large_.push_back(std::move(b));
    used_ += bytes;
    return p;
  }
  if (chunks_.empty() || chunks_.back().size() - chunk_used_ < bytes) {
    IRIS_ASSIGN_OR_RETURN(AnonymousBuffer b, AnonymousBuffer::Allocate(kChunk));
    chunks_.push_back(std::move(b));
    chunk_used_ = 0;
  }
  uint8_t* p = chunks_.back().data() + chunk_used_;
  chunk_used_ += bytes;
  used_ += bytes;
  return p;
}

Result<tensor::TensorView> WeightBinder::Copy(const tensor::TensorView& v) {
  const size_t n = v.num_bytes();
  IRIS_ASSIGN_OR_RETURN(uint8_t * dst, owned_.Allocate(n));
  const auto* src = static_cast<const uint8_t*>(v.data);
  constexpr size_t kGrain = size_t{1} << 20;
  ParallelFor(options_.pool, (n + kGrain - 1) / kGrain, 1, [&](size_t b, size_t e, int) {
    const size_t end = std::min(n, e * kGrain);
    std::memcpy(dst + b * kGrain, src + b * kGrain, end - b * kGrain);
  });
  tensor::TensorView copy = v;
  copy.data = dst;
  return copy;
}

Result<formats::TensorEntry> WeightBinder::Entry(const std::string& name,
                                                 const std::vector<int64_t>& shape) const {
  IRIS_ASSIGN_OR_RETURN(formats::TensorEntry e, store_.Get(name, shape));
  if (e.view.dtype != tensor::DType::kF32 && e.view.dtype != tensor::DType::kBF16 &&
      e.view.dtype != tensor::DType::kF16 && e.view.dtype != tensor::DType::kQ8_0 &&
      e.view.dtype != tensor::DType::kQ4_0 && !tensor::IsKFileType(e.view.dtype)) {
    return FailedPrecondition(
        e.file + ": tensor '" + name + "' has dtype " +
        std::string(tensor::DTypeName(e.view.dtype)) +
        "; weights must be F32, BF16, F16 (or Q8_0, Q4_0, Q4_K, Q5_K, Q6_K from a GGUF file)");
  }
  return e;
}

Result<tensor::TensorView> WeightBinder::Bind(const std::string& name,
                                              const std::vector<int64_t>& shape) {
  return BindMatrix(name, shape, /*rows_read=*/false);
}

Result<tensor::TensorView> WeightBinder::BindTable(const std::string& name,
                                                   const std::vector<int64_t>& shape) {
  return BindMatrix(name, shape, /*rows_read=*/true);
}

Result<tensor::TensorView> WeightBinder::BindMatrix(const std::string& name,
                                                    const std::vector<int64_t>& shape,
                                                    bool rows_read) {
  IRIS_ASSIGN_OR_RETURN(formats::TensorEntry e, Entry(name, shape));
  using tensor::DType;
  const DType stored = e.view.dtype;
  // The block format the matrix is multiplied in: the one the options ask for, else the
  // file's (Q8_0, Q4_0), else none. Rows are converted here when the two differ: Q4_0 to Q8_0
  // exactly (the same values), anything else through f32 and the quantizer. A K file's
  // matrices (Q4_K, Q5_K, Q6_K) keep their blocks, in K panels, when nothing else is asked.
  const bool is_matrix = tensor::WholeBlockMatrix(shape);
  const bool file_blocks = stored == DType::kQ8_0 || stored == DType::kQ4_0;
  const bool asked = options_.quantize == DType::kQ8_0 || options_.quantize == DType::kQ4_0;
  const DType blocks = !is_matrix    ? DType::kF32
                       : asked       ? options_.quantize
                       : file_blocks ? stored
                                     : DType::kF32;
  const bool quantize = blocks != DType::kF32 && blocks != stored;
  const size_t rows = shape.empty() ? 0 : static_cast<size_t>(shape[0]);
  const size_t cols = shape.size() == 2 ? static_cast<size_t>(shape[1]) : 0;
  const bool k_file = tensor::IsKFileType(stored);
  if (k_file && blocks == DType::kF32 && kernels::MultipliesPanels(tensor::KPanelType(stored)) &&
      !rows_read && shape.size() == 2 && rows % tensor::kQ8PanelRows == 0 &&
      cols % tensor::kKSuperBlock == 0) {
    // A K matrix multiplied whole: its blocks in K panels, the file's values exactly.
    const DType out_type = tensor::KPanelType(stored);
    const size_t panel_bytes = tensor::PanelBytes(out_type, cols);
    IRIS_ASSIGN_OR_RETURN(uint8_t * dst,
                          owned_.Allocate(rows / tensor::kQ8PanelRows * panel_bytes));
    const size_t src_row = tensor::RowBytes(stored, cols);
    const auto* src = static_cast<const uint8_t*>(e.view.data);
    ParallelFor(
        options_.pool, rows, 64,
        [&](size_t begin, size_t end, int) {
          for (size_t r = begin; r < end; r += tensor::kQ8PanelRows) {
            tensor::RepackPanel(out_type, src + r * src_row, src_row, cols,
                                dst + r / tensor::kQ8PanelRows * panel_bytes);
          }
        },
        tensor::kQ8PanelRows);
    if (e.mapped) ReleasePages(e.view.data, e.view.num_bytes());
    tensor::TensorView converted = e.view;
    converted.dtype = out_type;
    converted.data = dst;
    return converted;
  }
  if ((stored == DType::kQ4_0 || k_file) && blocks == DType::kF32) {
    // No kernel multiplies it as it is (not a matrix of whole blocks, a table read by rows,
    // or a CPU without the panel kernels): its values, in f32.
    std::vector<float> values = ops::ToF32(e.view);
    IRIS_ASSIGN_OR_RETURN(uint8_t * dst, owned_.Allocate(values.size() * sizeof(float)));
    std::memcpy(dst, values.data(), values.size() * sizeof(float));
    if (e.mapped) ReleasePages(e.view.data, e.view.num_bytes());
    tensor::TensorView f32 = e.view;
    f32.dtype = DType::kF32;
    f32.data = dst;
    return f32;
  }
  // Block rows go in panels of 16 rows where the int8 path prefers it and the matrix allows;
  // else Q8_0 rows (Q4_0 rewritten as the Q8_0 blocks of the same values), repacked row by
  // row where the path prefers that.
  const bool panels =
      blocks != DType::kF32 &&
      kernels::MultipliesPanels(blocks == DType::kQ4_0 ? DType::kQ4_0p : DType::kQ8_0p) &&
      !rows_read && shape[0] % static_cast<int64_t>(tensor::kQ8PanelRows) == 0;
  if (blocks != DType::kF32 &&
      (quantize || panels || stored == DType::kQ4_0 || kernels::PrefersRepackedQ8())) {
    const DType out_type = panels ? (blocks == DType::kQ4_0 ? DType::kQ4_0p : DType::kQ8_0p)
                           : kernels::PrefersRepackedQ8() ? DType::kQ8_0x
                                                          : DType::kQ8_0;
    const size_t row_bytes = tensor::RowBytes(out_type, cols);
    IRIS_ASSIGN_OR_RETURN(uint8_t * dst, owned_.Allocate(rows * row_bytes));
    const size_t src_row = tensor::RowBytes(stored, cols);
    const size_t block_row = tensor::RowBytes(blocks, cols);
    const size_t q8_row = tensor::RowBytes(DType::kQ8_0, cols);
    // Rows [begin, end) in `blocks`, block_row bytes apart (in `buf` when quantized here).
    auto block_rows = [&](size_t begin, size_t end, std::vector<uint8_t>& buf,
                          std::vector<float>& values) -> const uint8_t* {
      const uint8_t* src = static_cast<const uint8_t*>(e.view.data) + begin * src_row;
      if (!quantize) return src;
      buf.resize((end - begin) * block_row);
      for (size_t r = begin; r < end; ++r) {
        const uint8_t* row = src + (r - begin) * src_row;
        uint8_t* out = buf.data() + (r - begin) * block_row;
        if (stored == DType::kQ4_0 && blocks == DType::kQ8_0) {  // exact
          tensor::WidenRowToQ8_0(tensor::GgmlType::kQ4_0, row, cols, out);
          continue;
        }
        kernels::ConvertRowToF32(row, stored, cols, values.data());
        if (blocks == DType::kQ4_0) {
          tensor::QuantizeRowQ4_0(values.data(), cols, out);
        } else {
          tensor::QuantizeRowQ8_0(values.data(), cols, out);
        }
      }
      return buf.data();
    };
    auto body = [&](size_t begin, size_t end, int) {
      std::vector<float> values(cols);
      std::vector<uint8_t> buf, q8(q8_row);
      if (panels) {  // whole panels: begin and end are multiples of 16 (the alignment below)
        for (size_t r = begin; r < end; r += tensor::kQ8PanelRows) {
          const uint8_t* src = block_rows(r, r + tensor::kQ8PanelRows, buf, values);
          tensor::RepackPanel(out_type, src, block_row, cols, dst + r * row_bytes);
        }
        return;
      }
      for (size_t r = begin; r < end; ++r) {
        const uint8_t* src = block_rows(r, r + 1, buf, values);
        if (blocks == DType::kQ4_0) {
          tensor::WidenRowToQ8_0(tensor::GgmlType::kQ4_0, src, cols, q8.data());
          src = q8.data();
        }
        if (out_type == DType::kQ8_0x) {
          tensor::RepackRowQ8_0x(src, cols, dst + r * row_bytes);
        } else {
          std::memcpy(dst + r * row_bytes, src, row_bytes);
        }
      }
    };
    ParallelFor(options_.pool, rows, 64, body, panels ? tensor::kQ8PanelRows : 1);
    if (e.mapped) ReleasePages(e.view.data, e.view.num_bytes());
    tensor::TensorView converted = e.view;
    converted.dtype = out_type;
    converted.data = dst;
    return converted;
  }
  if (!rows_read && Packs(e, shape)) return Pack(e);
  if (options_.narrow_exact_f32 && e.view.dtype == tensor::DType::kF32 && shape.size() >= 2 &&
      tensor::ExactlyBf16(e.view)) {
    const size_t n = static_cast<size_t>(e.view.num_elements());
    IRIS_ASSIGN_OR_RETURN(uint8_t * dst, owned_.Allocate(2 * n));
    auto* half = reinterpret_cast<uint16_t*>(dst);
    const auto* src = static_cast<const uint8_t*>(e.view.data);
    ParallelFor(options_.pool, n, size_t{1} << 18, [&](size_t b, size_t end, int) {
      for (size_t i = b; i < end; ++i) {
        uint32_t w;
        std::memcpy(&w, src + 4 * i, 4);  // may be unaligned
        half[i] = static_cast<uint16_t>(w >> 16);
      }
    });
    if (e.mapped) ReleasePages(e.view.data, e.view.num_bytes());
    tensor::TensorView narrow = e.view;
    narrow.dtype = tensor::DType::kBF16;
    narrow.data = dst;
    return narrow;
  }
  // Weights the model reads every token live in its own memory (WeightMemory), not in the
  // file's mapping; that also aligns a tensor the file placed at an odd offset. Tensors some
  // other owner already holds in memory (converted at load) are used where they are.
  const bool aligned =
      reinterpret_cast<uintptr_t>(e.view.data) % tensor::DTypeSize(e.view.dtype) == 0;
  if (!e.mapped && aligned) return e.view;
  IRIS_ASSIGN_OR_RETURN(tensor::TensorView copy, Copy(e.view));
  if (e.mapped) ReleasePages(e.view.data, e.view.num_bytes());
  return copy;
}

bool WeightBinder::Packs(const formats::TensorEntry& e, const std::vector<int64_t>& shape) const {
  using tensor::DType;
  const DType stored = e.view.dtype;
  // (Matrices quantized at load, and a table whose rows are, stay int8. A tensor another
  // owner already holds in memory, converted at load, such as a GGUF file's Q/K rows put back
  // in order, is used where it is: a packed copy would hold it twice.)
  if (options_.panels == WeightOptions::Panels::kNone || options_.quantize != DType::kF32 ||
      !e.mapped || shape.size() != 2 ||
      shape[0] % static_cast<int64_t>(tensor::kHalfPanelRows) != 0) {
    return false;
  }
  if (options_.panels == WeightOptions::Panels::kBf16) {
    return stored == DType::kF32 || stored == DType::kF16 || stored == DType::kBF16;
  }
  return stored == DType::kBF16 || stored == DType::kF16 ||
         (stored == DType::kF32 && options_.narrow_exact_f32 && tensor::ExactlyBf16(e.view));
}

Result<tensor::TensorView> WeightBinder::Pack(const formats::TensorEntry& e) {
  // The products' panels, packed once here rather than at every product.
  const size_t rows = static_cast<size_t>(e.view.shape[0]);
  const size_t cols = static_cast<size_t>(e.view.shape[1]);
  // The exact path keeps an F16 matrix's values (kF16p); everything else is bf16 (kBF16p).
  const bool exact = options_.panels == WeightOptions::Panels::kExact;
  const tensor::DType out_type =
      exact && e.view.dtype == tensor::DType::kF16 ? tensor::DType::kF16p : tensor::DType::kBF16p;
  const size_t row_bytes = tensor::RowBytes(out_type, cols);
  IRIS_ASSIGN_OR_RETURN(uint8_t * dst, owned_.Allocate(rows * row_bytes));
  ParallelFor(
      options_.pool, rows, 64,
      [&](size_t begin, size_t end, int) {
        if (out_type == tensor::DType::kF16p) {
          kernels::PackF16Panels(e.view.data, cols, begin, end, dst);
        } else {
          kernels::PackBf16Panels(e.view.data, e.view.dtype, cols, begin, end, dst,
                                  /*exact_f32=*/exact);
        }
      },
      tensor::kHalfPanelRows);
  if (e.mapped) ReleasePages(e.view.data, e.view.num_bytes());
  tensor::TensorView packed = e.view;
  packed.dtype = out_type;
  packed.data = dst;
  return packed;
}

Result<std::optional<tensor::TensorView>> WeightBinder::BindPanelsCopy(
    const std::string& name, const std::vector<int64_t>& shape) {
  IRIS_ASSIGN_OR_RETURN(formats::TensorEntry e, Entry(name, shape));
  if (!Packs(e, shape)) return std::optional<tensor::TensorView>();
  IRIS_ASSIGN_OR_RETURN(tensor::TensorView packed, Pack(e));
  return std::optional<tensor::TensorView>(packed);
}

Result<tensor::TensorView> WeightBinder::BindRows(const std::string& name,
                                                  const std::vector<int64_t>& shape) {
  IRIS_ASSIGN_OR_RETURN(formats::TensorEntry e, Entry(name, shape));
  const bool as_stored =
      e.view.dtype == tensor::DType::kBF16 || e.view.dtype == tensor::DType::kF16;
  const bool aligned =
      reinterpret_cast<uintptr_t>(e.view.data) % tensor::DTypeSize(e.view.dtype) == 0;
  if (e.mapped && as_stored && aligned && options_.quantize == tensor::DType::kF32) return e.view;
  return BindTable(name, shape);
}

Result<std::vector<float>> WeightBinder::BindF32(const std::string& name,
                                                 const std::vector<int64_t>& shape) {
  // Converted straight from where the file holds it (unaligned reads are fine here).
  IRIS_ASSIGN_OR_RETURN(formats::TensorEntry e, Entry(name, shape));
  return ops::ToF32(e.view);
}

}  // namespace iris::model
