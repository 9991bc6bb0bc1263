"""The running batch's KV cache: admit new rows between decode steps, drop finished ones.

transformers' own continuous batching (`generate_batch`, `ContinuousBatchingManager`) runs on
CPU in 5.24, but it fixes `do_sample`, the seed and `num_return_sequences` for the whole manager;
a server needs them per request. So the batch is kept here instead: one `DynamicCache` whose rows
are left-padded to a common length with a 2-D attention mask. New requests are prefilled together
in their own cache and concatenated in (padding whichever side is shorter); finished or
cancelled rows are removed with an index select, and columns that only pad every remaining row
are trimmed, so the cache never grows past the longest live sequence.

A decode step appends one position to every layer; transformers' `DynamicLayer` does that with
`torch.cat`, copying the whole cache each step (a tenth of a batch-16 step on CPU). `build_cache`
swaps in `GrowingLayer`, whose keys and values are views into buffers with spare room: appends
write in place, and a copy happens only when the room runs out (capacity doubles) or after the
batch changes shape here (merge, row removal, trim), which is rare next to decode steps.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True, kw_only=True)
class BatchTensors:
    """The cache and the mask for the rows that are decoding; `positions` = tokens cached per row."""

    cache: object  # transformers DynamicCache
    attention_mask: object  # LongTensor [B, L]
    positions: list[int]

    @property
    def size(self) -> int:
        return len(self.positions)


def build_cache(config):
    """A `DynamicCache` whose full-attention layers grow in place (sliding-window layers are kept)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=config)
    layers = getattr(cache, "layers", None)
    if layers and all(type(layer) is DynamicLayer for layer in layers):
        cache.layers = [_growing_layer_class()() for _ in layers]
    return cache


_GROWING = None


def _growing_layer_class():
    """`GrowingLayer`, defined on first use so that importing this module needs no transformers."""
    global _GROWING
    if _GROWING is None:
        import torch
        from transformers.cache_utils import DynamicLayer

        class GrowingLayer(DynamicLayer):
            _kbuf = _vbuf = _kview = None

            def update(self, key_states, value_states, *args, **kwargs):
                if not self.is_initialized or self.keys is None or self.keys.numel() == 0:
                    return super().update(key_states, value_states, *args, **kwargs)
                length, add = self.keys.shape[-2], key_states.shape[-2]
                fresh = self.keys is not self._kview  # changed outside (merge, select, trim)
                if fresh or length + add > self._kbuf.shape[-2]:
                    capacity = max(2 * (length + add), length + add + 16)
                    shape = (*self.keys.shape[:2], capacity, self.keys.shape[-1])
                    kbuf = torch.empty(shape, dtype=self.keys.dtype, device=self.keys.device)
                    vbuf = torch.empty((*shape[:3], self.values.shape[-1]), dtype=self.values.dtype,
                                       device=self.values.device)
                    kbuf[:, :, :length].copy_(self.keys)
                    vbuf[:, :, :length].copy_(self.values)
                    self._kbuf, self._vbuf = kbuf, vbuf
                self._kbuf[:, :, length:length + add].copy_(key_states)
                self._vbuf[:, :, length:length + add].copy_(value_states)
                self.keys = self._kview = self._kbuf[:, :, :length + add]
                self.values = self._vbuf[:, :, :length + add]
                return self.keys, self.values

        _GROWING = GrowingLayer
    return _GROWING


def build_prefill_inputs(prompts: list[list[int]], pad_id: int, device):
    """Left-padded input ids, attention mask and position ids for a group of prompts."""
    import torch

    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, prompt in enumerate(prompts):
        ids[i, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
        mask[i, width - len(prompt):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), positions.to(device)


def fits_prefill_budget(lengths: list[int], budget: int) -> bool:
    """Whether prompts of these lengths, left-padded to the longest, fit one prefill of `budget` tokens."""
    return len(lengths) * max(lengths) <= budget


def build_chunk_inputs(tokens: list[int], start: int, end: int, device):
    """Inputs that feed `tokens[start:end]` to a one-row cache already holding `tokens[:start]`."""
    import torch

    ids = torch.tensor([tokens[start:end]], dtype=torch.long)
    mask = torch.ones((1, end), dtype=torch.long)
    positions = torch.arange(start, end, dtype=torch.long).unsqueeze(0)
    return ids.to(device), mask.to(device), positions.to(device)


def _layers(cache) -> list:
    layers = getattr(cache, "layers", None)
    if layers is None:
        raise RuntimeError("this transformers version has no cache.layers: the batching engine needs it")
    return layers


def _pad_left(tensor, amount: int, dim: int):
    import torch

    if amount == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = amount
    return torch.cat([torch.zeros(shape, dtype=tensor.dtype, device=tensor.device), tensor], dim=dim)


def merge_batches(running: BatchTensors | None, new: BatchTensors) -> BatchTensors:
    """Append `new` rows after `running` ones, aligning both on the right."""
    import torch

    if running is None or running.size == 0:
        return new
    width = max(running.attention_mask.shape[1], new.attention_mask.shape[1])
    for old_layer, new_layer in zip(_layers(running.cache), _layers(new.cache), strict=True):
        old_pad = width - old_layer.keys.shape[-2]
        new_pad = width - new_layer.keys.shape[-2]
        old_layer.keys = torch.cat([_pad_left(old_layer.keys, old_pad, 2), _pad_left(new_layer.keys, new_pad, 2)])
        old_layer.values = torch.cat([_pad_left(old_layer.values, old_pad, 2),
                                      _pad_left(new_layer.values, new_pad, 2)])
    mask = torch.cat([
        _pad_left(running.attention_mask, width - running.attention_mask.shape[1], 1),
        _pad_left(new.attention_mask, width - new.attention_mask.shape[1], 1),
    ])
    return replace(running, attention_mask=mask, positions=running.positions + new.positions)


def select_rows(batch: BatchTensors, keep: list[int]) -> BatchTensors | None:
    """Keep only rows `keep` (in order) and trim columns that are padding for all of them."""
    import torch

    if not keep:
        return None
    if len(keep) != batch.size:
        index = torch.tensor(keep, dtype=torch.long, device=batch.attention_mask.device)
        for layer in _layers(batch.cache):
            layer.keys = layer.keys.index_select(0, index)
            layer.values = layer.values.index_select(0, index)
        mask = batch.attention_mask.index_select(0, index)
    else:
        mask = batch.attention_mask
    live_columns = mask.any(dim=0).nonzero()
    first = int(live_columns[0]) if live_columns.numel() else 0
    if first:
        for layer in _layers(batch.cache):
            layer.keys = layer.keys[:, :, first:, :]
            layer.values = layer.values[:, :, first:, :]
        mask = mask[:, first:]
    return replace(batch, attention_mask=mask, positions=[batch.positions[i] for i in keep])


def build_decode_inputs(batch: BatchTensors, last_tokens: list[int]):
    """Inputs for one decode step: the last token of each row, the grown mask, its position."""
    import torch

    device = batch.attention_mask.device
    ids = torch.tensor(last_tokens, dtype=torch.long, device=device).unsqueeze(1)
    ones = torch.ones((batch.size, 1), dtype=batch.attention_mask.dtype, device=device)
    mask = torch.cat([batch.attention_mask, ones], dim=1)
    positions = torch.tensor(batch.positions, dtype=torch.long, device=device).unsqueeze(1)
    return ids, mask, positions
