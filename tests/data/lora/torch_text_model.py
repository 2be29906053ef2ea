"""The SmolVLM2 text decoder (Llama) in PyTorch, with LoRA on its linear layers, written from the
architecture alone: the reference that iris's training is checked against (grad_reference.py)
and timed against (bench/finetune.sh)."""
import math

import torch

SITES = [("self_attn", "q_proj"), ("self_attn", "k_proj"), ("self_attn", "v_proj"),
         ("self_attn", "o_proj"), ("mlp", "gate_proj"), ("mlp", "up_proj"), ("mlp", "down_proj")]
PREFIX = "model.text_model."


class TextModel:
    """weights: {name: float32 tensor} of a checkpoint; cfg: its text_config."""

    def __init__(self, weights, cfg):
        self.w = weights
        self.d = cfg["hidden_size"]
        self.nh = cfg["num_attention_heads"]
        self.nkv = cfg["num_key_value_heads"]
        self.hd = cfg.get("head_dim", self.d // self.nh)
        self.eps = cfg["rms_norm_eps"]
        self.theta = cfg["rope_theta"]
        self.layers = cfg["num_hidden_layers"]
        self.lora = {}  # module -> (A, B)
        self.scale = 0.0

    def add_lora(self, rank, alpha, init):
        """LoRA on every linear layer; init(module, out_dim, in_dim) -> (A, B) tensors."""
        self.scale = alpha / rank
        for i in range(self.layers):
            for block, name in SITES:
                module = f"{PREFIX}layers.{i}.{block}.{name}"
                out_dim, in_dim = self.w[module + ".weight"].shape
                a, b = init(module, out_dim, in_dim)
                self.lora[module] = (a.requires_grad_(True), b.requires_grad_(True))

    def parameters(self):
        return [t for pair in self.lora.values() for t in pair]

    def _rms(self, x, weight):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * weight

    def _linear(self, x, module):
        y = x @ self.w[module + ".weight"].T
        if module in self.lora:
            a, b = self.lora[module]
            y = y + self.scale * ((x @ a.T) @ b.T)
        return y

    def _rope(self, x, T):  # x [T, heads, hd], rotate-half
        hd = self.hd
        inv = 1.0 / (self.theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
        ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
        cos = torch.cat([ang.cos(), ang.cos()], -1).float()[:, None, :]
        sin = torch.cat([ang.sin(), ang.sin()], -1).float()[:, None, :]
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    def embed(self, ids):
        return self.w[PREFIX + "embed_tokens.weight"][torch.tensor(ids)]

    def logits(self, x, rows=None):
        """x: [T, d] input embeddings; the logits of `rows` (all when None)."""
        T = x.shape[0]
        nh, nkv, hd = self.nh, self.nkv, self.hd
        mask = torch.full((T, T), float("-inf")).triu(1)
        for i in range(self.layers):
            p = f"{PREFIX}layers.{i}."
            h = self._rms(x, self.w[p + "input_layernorm.weight"])
            q = self._rope(self._linear(h, p + "self_attn.q_proj").view(T, nh, hd), T)
            k = self._rope(self._linear(h, p + "self_attn.k_proj").view(T, nkv, hd), T)
            v = self._linear(h, p + "self_attn.v_proj").view(T, nkv, hd)
            k = k.repeat_interleave(nh // nkv, dim=1)
            v = v.repeat_interleave(nh // nkv, dim=1)
            s = torch.einsum("ihd,jhd->hij", q, k) / math.sqrt(hd) + mask
            o = torch.einsum("hij,jhd->ihd", s.softmax(-1), v).reshape(T, nh * hd)
            x = x + self._linear(o, p + "self_attn.o_proj")
            h = self._rms(x, self.w[p + "post_attention_layernorm.weight"])
            g = self._linear(h, p + "mlp.gate_proj")
            u = self._linear(h, p + "mlp.up_proj")
            x = x + self._linear(torch.nn.functional.silu(g) * u, p + "mlp.down_proj")
        if rows is not None:
            x = x[rows]
        return self._rms(x, self.w[PREFIX + "norm.weight"]) @ self.w["lm_head.weight"].T
