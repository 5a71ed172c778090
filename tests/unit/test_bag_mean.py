"""The n-gram bag mean in both its forms (eager ``embedding_bag`` and the exported graph's
prefix sums) against a float64 sum text by text, on a chunk as long as 64 catalogue listings,
with texts without n-grams first, in the middle and last."""

from __future__ import annotations

import numpy as np
import torch

from ipguard.nets.graphs import _prefix_sum_bags, bag_mean


def _chunk(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(5000, 16, generator=gen) * 0.5 + 0.05  # a shared direction, as trained
    counts = torch.randint(1, 1200, (64,), generator=gen)
    counts[[0, 17, 63]] = 0
    ids = torch.randint(5000, (int(counts.sum()),), generator=gen)
    return weight, ids, counts.to(torch.float32)


def _reference(weight: torch.Tensor, ids: torch.Tensor, counts: torch.Tensor) -> np.ndarray:
    w, out, start = weight.double().numpy(), [], 0
    for count in counts.long().tolist():
        bag = w[ids[start : start + count].numpy()]
        out.append(bag.mean(axis=0) if count else np.zeros(w.shape[1]))
        start += count
    return np.stack(out)


def test_both_forms_are_the_mean_of_each_texts_embeddings() -> None:
    weight, ids, counts = _chunk(0)
    assert len(ids) > 30_000
    want = _reference(weight, ids, counts)
    for form in (bag_mean, _prefix_sum_bags):
        got = form(weight, ids, counts).double().numpy()
        np.testing.assert_allclose(got, want, atol=1e-6, err_msg=form.__name__)
        assert not got[[0, 17, 63]].any()  # texts without n-grams: zero vectors
    assert np.abs(want).max() > 0.01  # the means compared are not all near zero


def test_a_batch_without_any_n_gram_gives_zero_vectors() -> None:
    weight = torch.randn(50, 8)
    for form in (bag_mean, _prefix_sum_bags):
        out = form(weight, torch.zeros(0, dtype=torch.int64), torch.zeros(3))
        assert out.shape == (3, 8) and not out.any(), form.__name__


def test_the_graph_form_is_what_an_export_traces() -> None:
    weight, ids, counts = _chunk(1)

    class Bags(torch.nn.Module):
        def forward(self, ids: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
            return bag_mean(weight, ids, counts)

    program = torch.export.export(Bags(), (ids, counts))
    targets = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert any("cumsum" in t for t in targets), targets
    assert not any("embedding_bag" in t or "index_add" in t or "scatter" in t for t in targets)
