#!/usr/bin/python3
"""Writes dequant_cases.gguf: tensors of every ggml type iris reads, each beside the f32
values gguf-py's numpy code dequantizes it to (gguf_test.cc checks iris agrees bit for bit).

For each type T there are two cases, one small and one of odd shape (rows that are not a
power of two, several blocks per row):

    T.a, T.b              the stored tensor, of type T
    T.a.expected, ...     F32: gguf.quants.dequantize(T.a's bytes, T)

The block bytes are random (every bit pattern of the quantized fields occurs), except that the
f16 scales and minimums are drawn from finite values, so the expected values are finite and
the comparison is of ordinary numbers. F32/F16/BF16 cases hold random finite values.

Needs Debian's python3-numpy and gguf-py from the llama.cpp source (the commit
../shared/anchors/build-llamacpp.sh builds puts it in OUT_DIR/gguf-py):

It also converts the two tiny golden checkpoints (tests/data/smolvlm2/tiny-*-style) into the
layout llama.cpp's convert_hf_to_gguf.py gives SmolVLM2, written here independently of iris:
<model>/text-BF16.gguf (arch llama: tensor names blk.N.*, Q and K rows permuted per head as
LlamaModel.permute does, the tokenizer as tokenizer.ggml.* arrays, the chat template) and
<model>/mmproj-BF16.gguf (arch clip, projector idefics3: v.blk.N.*, mm.model.fc.weight, patch
and position embeddings F32), plus text-Q8_0.gguf and text-Q4_0.gguf with every 2-D weight
quantized by gguf-py.
gguf_checkpoint_test.cc checks iris reads them to the same model as the safetensors files.

tiny-2.2b-style/text-Q4_K_M.gguf is not written here: it is llama-quantize's output (llama.cpp
3f545bec, built by ../shared/anchors/build-llamacpp.sh) for text-BF16.gguf,
`llama-quantize text-BF16.gguf text-Q4_K_M.gguf Q4_K_M`: its FFN down projections (rows of 256)
are Q4_K and Q6_K, the rest Q5_0/Q8_0 (llama-quantize's fallbacks for rows of 64).

    /usr/bin/python3 tests/data/gguf/generate.py --gguf-py /tmp/llama.cpp/gguf-py
"""
import argparse
import os
import sys

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--gguf-py", required=True)
HERE = os.path.dirname(os.path.abspath(__file__))
ap.add_argument("--out", default=os.path.join(HERE, "dequant_cases.gguf"))
args = ap.parse_args()
sys.path.insert(0, args.gguf_py)
import gguf  # noqa: E402
from gguf import GGMLQuantizationType as T  # noqa: E402

rng = np.random.default_rng(20261203)


def finite_f16(n):
    # Scales of the magnitude real files hold, with either sign, some zero, some subnormal.
    v = rng.normal(0.0, 0.02, n).astype(np.float16)
    v[rng.random(n) < 0.05] = 0
    v[rng.random(n) < 0.05] = np.float16(3e-6)
    return v.view(np.uint8).reshape(n, 2)


# Byte offsets of the f16 fields of each block type.
HALVES = {T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
          T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208]}
SHAPES = {32: [(1, 32), (5, 96)], 256: [(1, 256), (3, 768)], 1: [(1, 8), (7, 19)]}

w = gguf.GGUFWriter(args.out, "iris-dequant-cases")
for qt in [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q4_K, T.Q5_K, T.Q6_K]:
    block, size = gguf.GGML_QUANT_SIZES[qt]
    for tag, (rows, cols) in zip("ab", SHAPES[block]):
        name = f"{qt.name}.{tag}"
        if qt in (T.F32, T.F16, T.BF16):
            x = rng.normal(0.0, 1.0, (rows, cols)).astype(np.float32)
            data = gguf.quants.quantize(x, qt) if qt != T.F32 else x
            raw = data.view(np.uint8).reshape(rows, -1)
        else:
            nblocks = rows * cols // block
            raw = rng.integers(0, 256, (nblocks, size), dtype=np.uint8)
            for off in HALVES[qt]:
                raw[:, off:off + 2] = finite_f16(nblocks)
            raw = raw.reshape(rows, cols // block * size)
        expected = gguf.quants.dequantize(raw, qt).astype(np.float32).reshape(rows, cols)
        assert np.all(np.isfinite(expected)), name
        w.add_tensor(name, raw, raw_shape=None, raw_dtype=qt)
        w.add_tensor(name + ".expected", expected)
# Quantization: F32 values (some blocks all zero, some with ties at .5 after scaling) and the
# Q8_0 bytes gguf-py's quantizer (bit-exact with ggml's reference) makes of them.
src = rng.normal(0.0, 0.05, (6, 96)).astype(np.float32)
src[1, 32:64] = 0
src[2, :32] = np.arange(32, dtype=np.float32) - 15.5
w.add_tensor("quantize.Q8_0.src", src)
w.add_tensor("quantize.Q8_0", gguf.quants.quantize(src, T.Q8_0), raw_dtype=T.Q8_0)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print("wrote", args.out)


# ---- the tiny golden checkpoints, converted as convert_hf_to_gguf.py lays out SmolVLM2 ----
import json  # noqa: E402
import struct  # noqa: E402


def read_safetensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        lo, hi = e["data_offsets"]
        raw = np.frombuffer(b[8 + n + lo:8 + n + hi], dtype=np.uint8)
        assert e["dtype"] == "BF16", name
        f32 = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        out[name] = f32.reshape(e["shape"])
    return out


def permute(w, n_head):  # LlamaModel.permute of the converter, on numpy rows
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def add(w, name, a, qt):
    if qt == T.F32:
        w.add_tensor(name, a.astype(np.float32))
    else:
        w.add_tensor(name, gguf.quants.quantize(a.astype(np.float32), qt), raw_dtype=qt)


def write_text(d, out, qt):
    cfg = json.load(open(os.path.join(d, "config.json")))
    t = cfg["text_config"]
    tok = json.load(open(os.path.join(d, "tokenizer.json")))
    tmpl = json.load(open(os.path.join(d, "chat_template.json")))["chat_template"]
    gen = json.load(open(os.path.join(d, "generation_config.json")))
    wts = read_safetensors(os.path.join(d, "model.safetensors"))
    vocab = tok["model"]["vocab"]
    added = {a["id"]: a for a in tok["added_tokens"]}
    n_vocab = t["vocab_size"]
    tokens, types = [], []
    by_id = {i: s for s, i in vocab.items()}
    for i in range(n_vocab):
        if i in added:
            tokens.append(added[i]["content"])
            types.append(3 if added[i]["special"] else 4)  # CONTROL, USER_DEFINED
        elif i in by_id:
            tokens.append(by_id[i])
            types.append(1)  # NORMAL
        else:
            tokens.append(f"[PAD{i}]")
            types.append(5)  # UNUSED
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    w = gguf.GGUFWriter(out, "llama")
    w.add_name("tiny smolvlm2 text model")
    w.add_block_count(t["num_hidden_layers"])
    w.add_context_length(t["max_position_embeddings"])
    w.add_embedding_length(t["hidden_size"])
    w.add_feed_forward_length(t["intermediate_size"])
    w.add_head_count(t["num_attention_heads"])
    w.add_head_count_kv(t["num_key_value_heads"])
    w.add_rope_freq_base(float(t["rope_theta"]))
    w.add_layer_norm_rms_eps(t["rms_norm_eps"])
    w.add_key_length(t["head_dim"])
    w.add_value_length(t["head_dim"])
    w.add_rope_dimension_count(t["head_dim"])
    w.add_vocab_size(n_vocab)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(gen["bos_token_id"])
    eos = gen["eos_token_id"]
    w.add_eos_token_id(eos[0] if isinstance(eos, list) else eos)
    w.add_pad_token_id(gen.get("pad_token_id", 2))
    w.add_add_bos_token(False)
    w.add_chat_template(tmpl)
    P = "model.text_model."
    nh, nkv = t["num_attention_heads"], t["num_key_value_heads"]
    add(w, "token_embd.weight", wts[P + "embed_tokens.weight"], qt)
    for i in range(t["num_hidden_layers"]):
        lp, gp = f"{P}layers.{i}.", f"blk.{i}."
        add(w, gp + "attn_norm.weight", wts[lp + "input_layernorm.weight"], T.F32)
        add(w, gp + "attn_q.weight", permute(wts[lp + "self_attn.q_proj.weight"], nh), qt)
        add(w, gp + "attn_k.weight", permute(wts[lp + "self_attn.k_proj.weight"], nkv), qt)
        add(w, gp + "attn_v.weight", wts[lp + "self_attn.v_proj.weight"], qt)
        add(w, gp + "attn_output.weight", wts[lp + "self_attn.o_proj.weight"], qt)
        add(w, gp + "ffn_norm.weight", wts[lp + "post_attention_layernorm.weight"], T.F32)
        add(w, gp + "ffn_gate.weight", wts[lp + "mlp.gate_proj.weight"], qt)
        add(w, gp + "ffn_up.weight", wts[lp + "mlp.up_proj.weight"], qt)
        add(w, gp + "ffn_down.weight", wts[lp + "mlp.down_proj.weight"], qt)
    add(w, "output_norm.weight", wts[P + "norm.weight"], T.F32)
    add(w, "output.weight", wts["lm_head.weight"], qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_mmproj(d, out, qt):
    cfg = json.load(open(os.path.join(d, "config.json")))
    v = cfg["vision_config"]
    pre = json.load(open(os.path.join(d, "preprocessor_config.json")))
    wts = read_safetensors(os.path.join(d, "model.safetensors"))
    w = gguf.GGUFWriter(out, "clip")
    w.add_clip_has_vision_encoder(True)
    w.add_vision_projection_dim(cfg["text_config"]["hidden_size"])
    w.add_vision_image_size(v["image_size"])
    w.add_vision_patch_size(v["patch_size"])
    w.add_vision_embedding_length(v["hidden_size"])
    w.add_vision_feed_forward_length(v["intermediate_size"])
    w.add_vision_block_count(v["num_hidden_layers"])
    w.add_vision_head_count(v["num_attention_heads"])
    w.add_vision_image_mean(pre["image_mean"])
    w.add_vision_image_std(pre["image_std"])
    w.add_clip_projector_type(gguf.VisionProjectorType.IDEFICS3)
    w.add_vision_attention_layernorm_eps(v.get("layer_norm_eps", 1e-5))
    w.add_vision_projector_scale_factor(cfg.get("scale_factor", 2))
    w.add_vision_use_gelu(True)
    w.add_vision_preproc_image_size(pre["size"]["longest_edge"])
    P = "model.vision_model."
    add(w, "v.patch_embd.weight", wts[P + "embeddings.patch_embedding.weight"], T.F32)
    add(w, "v.patch_embd.bias", wts[P + "embeddings.patch_embedding.bias"], T.F32)
    add(w, "v.position_embd.weight", wts[P + "embeddings.position_embedding.weight"], T.F32)
    names = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.out_proj": "attn_out", "mlp.fc1": "ffn_up", "mlp.fc2": "ffn_down",
             "layer_norm1": "ln1", "layer_norm2": "ln2"}
    for i in range(v["num_hidden_layers"]):
        for hf, gg in names.items():
            for kind in ("weight", "bias"):
                a = wts[f"{P}encoder.layers.{i}.{hf}.{kind}"]
                add(w, f"v.blk.{i}.{gg}.{kind}", a, qt if a.ndim == 2 else T.F32)
    add(w, "v.post_ln.weight", wts[P + "post_layernorm.weight"], T.F32)
    add(w, "v.post_ln.bias", wts[P + "post_layernorm.bias"], T.F32)
    add(w, "mm.model.fc.weight", wts["model.connector.modality_projection.proj.weight"], qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


for model in ("tiny-256m-style", "tiny-2.2b-style"):
    src = os.path.join(HERE, "..", "smolvlm2", model)
    dst = os.path.join(HERE, model)
    os.makedirs(dst, exist_ok=True)
    write_text(src, os.path.join(dst, "text-BF16.gguf"), T.BF16)
    write_mmproj(src, os.path.join(dst, "mmproj-BF16.gguf"), T.BF16)
    write_text(src, os.path.join(dst, "text-Q8_0.gguf"), T.Q8_0)
    write_text(src, os.path.join(dst, "text-Q4_0.gguf"), T.Q4_0)
    print("wrote", dst)
