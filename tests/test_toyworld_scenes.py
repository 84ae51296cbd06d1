"""Scenes: deterministic, never overlapping, and the novel split holds its pairs out."""

import numpy as np
import pytest

from training.toyworld.scenes import (
    COLOURS,
    NOVEL_PAIRS,
    PATCH_TASKS,
    POSITIONS,
    SHAPES,
    SIZES,
    Scene,
    SceneObject,
    patch_labels,
    render_scene,
    sample_scene,
)


def test_same_seed_gives_identical_scene_and_pixels():
    a = sample_scene(np.random.default_rng(5))
    b = sample_scene(np.random.default_rng(5))
    assert a == b
    assert render_scene(a).tobytes() == render_scene(b).tobytes()


def test_two_objects_never_overlap_in_pixels():
    rng = np.random.default_rng(0)
    for _ in range(200):
        scene = sample_scene(rng, n_objects=2)
        masks = []
        for obj in scene.objects:
            alone = Scene((obj,), scene.background, scene.texture_seed)
            masks.append(
                np.asarray(render_scene(alone))
                != np.asarray(render_scene(Scene((), scene.background, scene.texture_seed)))
            )
        assert not (masks[0].any(-1) & masks[1].any(-1)).any()
        assert len({o.position for o in scene.objects}) == 2


def test_held_out_pairs_only_in_novel_scenes():
    rng = np.random.default_rng(1)
    ordinary = [sample_scene(rng) for _ in range(300)]
    novel = [sample_scene(rng, novel=True) for _ in range(100)]
    assert not any(s.is_novel for s in ordinary)
    assert all((s.objects[0].colour, s.objects[0].shape) in NOVEL_PAIRS for s in novel)


def test_render_size_and_mode():
    scene = sample_scene(np.random.default_rng(2))
    image = render_scene(scene, 96)
    assert image.size == (96, 96) and image.mode == "RGB"


def test_bad_inputs_raise_value_error():
    scene = sample_scene(np.random.default_rng(3))
    with pytest.raises(ValueError, match="at least 32"):
        render_scene(scene, 8)
    with pytest.raises(ValueError, match="1 to 2 objects"):
        sample_scene(np.random.default_rng(0), n_objects=3)
    with pytest.raises(ValueError, match="unknown shape"):
        bad = SceneObject("hexagon", "red", "big", "left", 0.2, 0.5, 0.1)
        render_scene(Scene((bad,), (240, 240, 240), 0))


def test_scene_from_manifest_attributes_renders_them():
    from training.evaluate import check_image

    meta = [
        {"shape": "star", "colour": "red", "size": "big", "position": "left"},
        {"shape": "square", "colour": "green", "size": "small", "position": "centre"},
    ]
    scene = Scene.from_attributes(meta)
    assert [obj.attrs._asdict() for obj in scene.objects] == meta
    assert set(check_image(render_scene(scene))) == scene.attributes
    with pytest.raises(ValueError, match="unknown shape"):
        Scene.from_attributes(
            [{"shape": "oval", "colour": "red", "size": "big", "position": "left"}]
        )


def test_patch_labels_name_what_is_drawn_in_each_patch():
    big = SceneObject("square", "red", "big", "centre", 0.5, 0.5, 0.12)
    small = SceneObject("star", "blue", "small", "left", 0.18, 0.5, 0.07)
    labels = patch_labels(Scene((big, small), (244, 244, 244), 0), grid=16, size=64)
    assert labels.shape == (len(PATCH_TASKS), 16, 16)
    # The centre patch lies inside the red square: every task names it, coverage is full.
    assert labels[:, 8, 8].tolist() == [
        1 + SHAPES.index("square"),
        1 + list(COLOURS).index("red"),
        1 + SIZES.index("big"),
        1 + POSITIONS.index("centre"),
        4,
    ]
    assert labels[0, 8, 3] == 1 + SHAPES.index("star")  # the star around x = 0.18
    assert labels[:, 0, 0].tolist() == [0] * len(PATCH_TASKS)  # a background corner
    # Labelled patches are exactly those the square and the star touch.
    assert 0 < (labels[0] > 0).sum() < 16 * 16 // 4
    with pytest.raises(ValueError, match="multiple"):
        patch_labels(Scene((big,), (244, 244, 244), 0), grid=7, size=64)
