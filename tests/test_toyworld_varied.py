"""The varied world: every drawing factor drawn per sample within its recorded range, the
image checker still reads the renders, and the classic world stays byte for byte."""

import json
from pathlib import Path

import numpy as np
import pytest

from training.evaluate import check_image
from training.toyworld import generate, world_style
from training.toyworld.looks import jpeg_roundtrip, render_look, sample_look
from training.toyworld.scenes import POSITION_ANCHORS, sample_scene
from training.toyworld.styles import UNSEEN_DRAWING, UNSEEN_VARIANTS, VARIED_DRAWING

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "toyworld-examples"


def _varied(n: int, seed: int, drawing=VARIED_DRAWING):
    rng = np.random.default_rng(seed)
    return [(sample_scene(rng, drawing=drawing), sample_look(rng, drawing, 64)) for _ in range(n)]


def test_varied_factors_stay_in_their_ranges_and_vary():
    drawn = _varied(200, 0)
    counts = {len(scene.objects) for scene, _ in drawn}
    assert counts == {1, 2, 3}
    sides = [look.side for _, look in drawn]
    assert min(sides) >= 48 and max(sides) <= 96 and len(set(sides)) > 20
    assert {look.antialias for _, look in drawn} == {True, False}
    assert {look.outline > 0 for _, look in drawn} == {True, False}
    assert {look.jpeg_quality is None for _, look in drawn} == {True, False}
    objects = [obj for scene, _ in drawn for obj in scene.objects]
    small = [o.radius for o in objects if o.size == "small"]
    assert VARIED_DRAWING.small_radius[0] <= min(small) < max(small) <= 0.085
    offsets = [abs(o.x - POSITION_ANCHORS[o.position][0]) for o in objects]
    assert 0.03 < max(offsets) <= VARIED_DRAWING.position_jitter + 1e-9
    backgrounds = {scene.background for scene, _ in drawn}
    assert len(backgrounds) > 100


def test_checker_reads_varied_clean_renders_and_most_jpegs():
    drawn = _varied(300, 1)
    clean = [set(check_image(render_look(s, look))) == s.attributes for s, look in drawn]
    jpeg = [
        set(check_image(jpeg_roundtrip(render_look(s, look), look.jpeg_quality or 60)))
        == s.attributes
        for s, look in drawn
    ]
    # Measured 0.997 clean and 0.863 after JPEG at the look's quality (60 where it has none)
    # on this seed (0.997 / 0.82-0.87 on seeds 5 and 11); JPEG misses are mostly colours
    # and shapes of small objects.
    assert np.mean(clean) >= 0.99
    assert np.mean(jpeg) >= 0.8


def test_checker_reads_unseen_style_renders():
    drawn = _varied(100, 2, UNSEEN_DRAWING)
    assert min(look.side for _, look in drawn) >= 100  # disjoint from the training sides
    assert (
        np.mean([set(check_image(render_look(s, look))) == s.attributes for s, look in drawn])
        >= 0.98
    )


def test_classic_world_reproduces_the_shipped_examples(tmp_path):
    generate(tmp_path, 7, seed=0, progress=False)
    for path in sorted(EXAMPLES.rglob("*")):
        if path.is_file():
            assert (tmp_path / path.relative_to(EXAMPLES)).read_bytes() == path.read_bytes(), path


def test_varied_world_records_its_ranges_and_an_unseen_split(tmp_path):
    manifest = generate(
        tmp_path, 60, seed=3, progress=False, style="varied", tasks=["caption", "asr"]
    )
    records = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    world = json.loads((tmp_path / "world.json").read_text())
    assert world["style"]["drawing"]["sides"] == [48, 96]
    assert world["style"]["unseen_speaking"]["variants"] == list(UNSEEN_VARIANTS)
    assert "unseen" in world["split_shares"]
    unseen = [r for r in records if r["split"] == "unseen"]
    assert unseen
    for record in records:
        if record["task"] == "asr":
            variant = record["meta"]["voice"].split("+")[1].split("-")[0]
            assert (variant in UNSEEN_VARIANTS) == (record["split"] == "unseen")
        else:
            assert record["meta"]["look"]["side"] >= (100 if record["split"] == "unseen" else 48)


def test_unknown_style_option_or_split_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="unknown world style 'wavy'"):
        world_style("wavy")
    with pytest.raises(ValueError, match="unknown style options \\['blur'\\]"):
        world_style("varied", blur=2)
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        world_style("varied").for_split("dev")
    with pytest.raises(ValueError, match="has no 'unseen' split"):
        world_style("classic").for_split("unseen")
    with pytest.raises(ValueError, match="unknown world style"):
        generate(tmp_path, 1, seed=0, style="wavy", progress=False)
    assert world_style("varied", jpeg_share=0.0).drawing.jpeg_share == 0.0


def test_three_object_scenes_are_said_and_parsed_back():
    from training.toyworld import answer_candidates, ask, describe, parse_caption

    rng = np.random.default_rng(4)
    for _ in range(100):
        scene = sample_scene(rng, n_objects=3, drawing=VARIED_DRAWING)
        for lang in ("en", "ko"):
            for style in (0, 1):
                assert parse_caption(describe(scene, lang, style)) == scene.attributes
    assert ask(scene, "count", "en")[1] == "there are three"
    assert ask(scene, "count", "ko")[1] == "세 개 있어요"
    assert answer_candidates("count", "en", 3)[-1] == "there are three"
    assert answer_candidates("count", "en") == ["there is one", "there are two"]
