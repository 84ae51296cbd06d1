"""Image checker: hand-drawn cases, and every attribute of rendered scenes read back."""

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from training.evaluate import attribute_accuracy, check_image, label_components
from training.toyworld.scenes import ObjectAttrs, Scene, SceneObject, render_scene, sample_scene


def _canvas() -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGB", (64, 64), (250, 250, 250))
    return image, ImageDraw.Draw(image)


def test_hand_drawn_square_and_circle():
    image, draw = _canvas()
    draw.rectangle((5, 25, 19, 39), fill=(220, 30, 30))  # 15 px wide, centre (12.5, 32.5)
    draw.ellipse((28, 8, 36, 16), fill=(30, 70, 220))  # 9 px wide, centre (32.5, 12.5)
    assert check_image(image) == [
        ObjectAttrs("square", "red", "big", "left"),
        ObjectAttrs("circle", "blue", "small", "top"),
    ]


def test_hand_drawn_triangle_and_star():
    image, draw = _canvas()
    draw.polygon([(32, 44), (40, 59), (24, 59)], fill=(30, 160, 60))  # apex up, at the bottom
    star = SceneObject("star", "orange", "big", "right", 0.82, 0.5, 0.12)
    scene = Scene((star,), (250, 250, 250), 0)
    pixels = np.where(np.asarray(render_scene(scene)) < 200, np.asarray(render_scene(scene)), 250)
    combined = np.minimum(np.asarray(image), pixels.astype(np.uint8))
    assert check_image(combined) == [
        ObjectAttrs("triangle", "green", "big", "bottom"),
        ObjectAttrs("star", "orange", "big", "right"),
    ]


def test_empty_image_has_no_objects():
    image, _ = _canvas()
    assert check_image(image) == []


def test_reads_back_rendered_scenes():
    rng = np.random.default_rng(2024)
    scenes = [sample_scene(rng, n_objects=1 + i % 2, novel=i % 7 == 0) for i in range(300)]
    correct = sum(set(check_image(render_scene(s))) == s.attributes for s in scenes)
    assert correct / len(scenes) >= 0.99


def test_reads_back_other_sizes_and_light_blur():
    rng = np.random.default_rng(9)
    scenes = [sample_scene(rng) for _ in range(60)]
    for scene in scenes:
        assert set(check_image(render_scene(scene, 128))) == scene.attributes
        blurred = render_scene(scene).filter(ImageFilter.GaussianBlur(0.5))
        assert set(check_image(blurred)) == scene.attributes


def test_label_components_uses_eight_connectivity():
    mask = np.zeros((5, 5), dtype=bool)
    mask[0, 0] = mask[1, 1] = True  # diagonal neighbours: one component
    mask[3:, 3:] = True
    labels = label_components(mask)
    assert labels[0, 0] == labels[1, 1] != labels[4, 4] and len(np.unique(labels)) == 3


def test_attribute_accuracy_pairs_objects():
    truth = [
        ObjectAttrs("circle", "red", "big", "left"),
        ObjectAttrs("star", "blue", "small", "top"),
    ]
    assert attribute_accuracy(list(reversed(truth)), truth) == 1.0
    wrong_colour = [ObjectAttrs("circle", "green", "big", "left")]
    assert attribute_accuracy(wrong_colour, truth) == 3 / 8
    assert attribute_accuracy([], []) == 1.0


def test_bad_image_raises_value_error():
    with pytest.raises(ValueError, match="uint8 array"):
        check_image(np.zeros((8, 8), dtype=np.float32))
