from __future__ import annotations

from pathlib import Path

import numpy as np

from fyp.training import content


def test_text_vectors_put_videos_sharing_tokens_close() -> None:
    docs = [
        content.video_tokens(["dance", "party"], "", "c1", "s1"),
        content.video_tokens(["dance"], "late night party", "c2", "s1"),
        content.video_tokens(["cooking"], "pasta tonight", "c3", "s2"),
        content.video_tokens(["cooking"], "", "c3", "s2"),
    ]
    v = content.text_content(docs, dim=64, seed=1)
    sims = v @ v.T
    assert sims[0, 1] > 0.5 and sims[2, 3] > 0.5
    assert abs(sims[0, 2]) < 0.3
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    # A token's direction depends on the token only, not on the order of the catalog.
    again = content.text_content(docs[::-1], dim=64, seed=1)
    np.testing.assert_allclose(again[::-1], v, rtol=1e-5, atol=1e-6)


def test_tokens_used_once_carry_nothing() -> None:
    v = content.text_content([["@only-here"], ["#x"], ["#x"]], dim=16)
    assert not v[0].any() and v[1].any()


def test_nearest_is_exact_and_excludes_self() -> None:
    x = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], np.float32)
    idx, sims = content.nearest(x, 2)
    assert idx[:, 0].tolist() == [1, 0, 3, 2]
    assert (idx != np.arange(4)[:, None]).all()
    assert (np.diff(sims, axis=1) <= 0).all()


def test_tiktok_features_map_imported_ids_to_feature_rows(tmp_path: Path) -> None:
    folder = tmp_path / "tiktok"
    folder.mkdir()
    rng = np.random.default_rng(0)
    np.save(folder / "image_feat.npy", rng.standard_normal((5, 4)).astype(np.float16))
    np.save(folder / "audio_feat.npy", rng.standard_normal((5, 3)).astype(np.float16))
    out = content.tiktok_features(tmp_path, ["tt_v3", "other", "tt_v0"])
    assert out is not None and out.shape == (3, 7)
    assert out[0].any() and not out[1].any() and out[2].any()
    assert content.tiktok_features(tmp_path, ["a", "b"]) is None
    assert content.tiktok_features(tmp_path / "missing", ["tt_v1"]) is None
