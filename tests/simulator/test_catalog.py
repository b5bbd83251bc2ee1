from __future__ import annotations

from pathlib import Path

import pytest

from fyp.config import Settings
from fyp.models import VideoIn
from fyp.simulator.catalog import generate, kuairand


def test_generated_catalog_is_deterministic_and_uploadable() -> None:
    a, b = generate(videos=200, seed=5), generate(videos=200, seed=5)
    assert [(v.id, v.hashtags, v.quality) for v in a.videos] == [
        (v.id, v.hashtags, v.quality) for v in b.videos
    ]
    assert len(a.by_id) == 200
    for v in a.videos[:50]:
        VideoIn.model_validate(v.upload())  # what the API will accept
    assert 5_000 < a.median_duration_ms() < 60_000


def test_kuairand_catalog_uses_the_real_metadata() -> None:
    data_dir = Settings(_env_file=None).data_dir  # type: ignore[call-arg]
    if not (data_dir / "kuairand" / "video_features_basic_pure.csv").is_file():
        pytest.skip("KuaiRand metadata not present under settings.data_dir")
    cat = kuairand(data_dir, limit=500)
    assert len(cat.videos) == 500
    assert cat.videos[0].id == "kr_v0" and cat.videos[0].creator_id.startswith("kr_c")
    assert any(v.sound_id for v in cat.videos)
    assert all(v.duration_ms is None or v.duration_ms > 0 for v in cat.videos)
    VideoIn.model_validate(cat.videos[0].upload())


def test_kuairand_missing_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        kuairand(tmp_path)
