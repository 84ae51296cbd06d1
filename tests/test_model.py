"""The Omni model over real transformers backbones: losses, training, save/load, generation."""

import pickle

import pytest
import torch

from omni import Audio, Image, OmniForConditionalGeneration, Sample, Text, Turn
from omni.presets import build_micro

BACKBONES = ["micro-hcx-omni", "micro-k-exaone", "micro-solar-open", "micro-llama"]


def mixed_sample(image, wave) -> Sample:
    """Text, a continuous image, continuous audio, image codes and audio codes in one sample."""
    generator = torch.Generator().manual_seed(0)
    return Sample(
        [
            Turn("user", [Image(image), Audio(wave), Text("describe, then draw and say it")]),
            Turn(
                "assistant",
                [
                    Text("a red square"),
                    Image(codes=torch.randint(0, 256, (8, 8), generator=generator)),
                    Audio(codes=torch.randint(0, 243, (12,), generator=generator)),
                ],
            ),
        ]
    )


@pytest.mark.parametrize("name", BACKBONES)
def test_mixed_batch_trains_on_every_backbone(name, red_square, tone):
    model, processor = build_micro(name)
    batch = processor([mixed_sample(red_square, tone)])
    placeholders = batch.input_ids == model.layout.special_id("<|image_pad|>")
    assert placeholders.sum() == 4 and len(batch.media["audio"]) == 1
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    balancer = model.enable_bias_balancing()
    losses = []
    for _ in range(200):
        out = model(**batch.model_inputs())
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if balancer is not None:
            balancer.update()
        losses.append(out.loss.item())
        if losses[-1] < 0.2 * losses[0]:
            break
    assert out.mtp_loss is not None and torch.isfinite(out.loss)
    assert losses[-1] < 0.2 * losses[0], f"{name}: loss {losses[0]:.3f} -> {losses[-1]:.3f}"


def test_encoders_receive_gradients(red_square, tone):
    model, processor = build_micro("micro-llama")
    batch = processor([mixed_sample(red_square, tone)])
    model(**batch.model_inputs()).loss.backward()
    for modality in ("image", "audio"):
        grads = [p.grad for p in model.encoders[modality].parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), modality


def test_save_and_load_reproduce_logits_without_pickle(tmp_path, monkeypatch, red_square, tone):
    model, processor = build_micro("micro-k-exaone")
    model.eval()
    batch = processor([mixed_sample(red_square, tone)])
    with torch.no_grad():
        before = model(**batch.model_inputs())
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "config.json",
        "generation_config.json",
        "model.safetensors",
    ]

    def forbidden(*args, **kwargs):
        raise AssertionError("loading must not unpickle")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    loaded = OmniForConditionalGeneration.from_pretrained(tmp_path)
    loaded.eval()
    with torch.no_grad():
        after = loaded(**batch.model_inputs())
    assert torch.equal(before.logits, after.logits)
    assert torch.equal(before.mtp_logits, after.mtp_logits)
    assert loaded.balance == "bias"


def test_auto_classes_load_by_folder(tmp_path):
    from transformers import AutoConfig, AutoModelForCausalLM

    model, _ = build_micro("micro-solar-open", encoders={})
    model.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).model_type == "omni"
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert isinstance(loaded, OmniForConditionalGeneration)
    assert loaded.config.backbone_config.model_type == "solar_open"


@pytest.mark.parametrize("name", ["micro-llama", "micro-k-exaone"])
def test_cached_greedy_generation_equals_no_cache_reference(name, red_square, tone):
    model, processor = build_micro(name)
    model.eval()
    prompt = Sample([Turn("user", [Image(red_square), Audio(tone), Text("what is it?")])])
    batch = processor([prompt], padding_side="left", add_generation_prompt=True)
    with torch.no_grad():
        generated = model.generate(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            media=batch.media,
            max_new_tokens=8,
            do_sample=False,
            eos_token_id=None,
            pad_token_id=model.layout.special_id("<|pad|>"),
        )
        ids = batch.input_ids
        for _ in range(8):
            logits = model(input_ids=ids, media=batch.media, use_cache=False).logits
            ids = torch.cat([ids, logits[:, -1:].argmax(-1)], dim=1)
    assert torch.equal(generated, ids)


def test_bias_balancing_moves_bias_against_load():
    model, processor = build_micro("micro-k-exaone", encoders={})
    balancer = model.enable_bias_balancing()
    assert balancer is not None and len(balancer.routers) == 3
    batch = processor(
        [Sample([Turn("user", [Text("a big red circle on the left")])])], loss_on="all"
    )
    model.train()
    model(**batch.model_inputs())
    counts = {name: c.clone() for name, c in balancer.counts.items()}
    load = balancer.update()
    for name, router in balancer.routers.items():
        busiest, idlest = counts[name].argmax(), counts[name].argmin()
        assert router.e_score_correction_bias[busiest] < 0 < router.e_score_correction_bias[idlest]
    assert load.imbalance() >= 1.0 and all(c.sum() == 0 for c in balancer.counts.values())


def test_placeholder_feature_mismatch_is_a_value_error(red_square):
    model, processor = build_micro("micro-llama")
    batch = processor([Sample([Turn("user", [Image(red_square), Text("hi")])])])
    batch.media["image"].append(batch.media["image"][0])
    with pytest.raises(ValueError, match="4 image placeholder slots .* produced 8 embeddings"):
        model(**batch.model_inputs())


def test_model_without_encoder_names_the_modality(red_square, text_tokenizer):
    model, processor = build_micro("micro-llama")
    text_only, _ = build_micro("micro-llama", encoders={})
    batch = processor([Sample([Turn("user", [Image(red_square)])])])
    with pytest.raises(ValueError, match="no image encoder"):
        text_only(**batch.model_inputs())


def test_sequence_over_max_length_is_a_value_error():
    model, _ = build_micro("micro-llama", encoders={}, max_position_embeddings=16)
    with pytest.raises(ValueError, match="over the model's maximum length of 16"):
        model(input_ids=torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="input_ids must lie in"):
        model(input_ids=torch.full((1, 4), model.layout.total_size))


@pytest.mark.parametrize("name", BACKBONES)
def test_packed_rows_keep_samples_apart(name):
    """Each sample in a packed row gets the logits and loss it gets alone, in training too."""
    model, processor = build_micro(name)
    model.train()  # the micro presets have no dropout; train mode is where the cache used to leak
    pad = model.layout.special_id("<|pad|>")
    samples = [
        Sample([Turn("user", [Text(q)]), Turn("assistant", [Text(a)])])
        for q, a in [("name a colour", "red"), ("count to three, please", "one two three")]
    ]
    encoded = [processor.encode(sample) for sample in samples]
    packed = processor.pack(encoded, row_length=sum(len(e) for e in encoded))
    assert packed.input_ids.shape[0] == 1
    out = model(**packed.model_inputs())
    begin, loss_sum, target_count = 0, 0.0, 0
    for sample in sorted(encoded, key=len, reverse=True):  # pack() places the longest first
        row = processor.pack([sample], row_length=64)
        alone = model(**row.model_inputs())
        end = begin + len(sample)
        assert torch.equal(packed.input_ids[:, begin:end], row.input_ids[:, : len(sample)])
        assert int((row.input_ids != pad).sum()) == len(sample)
        torch.testing.assert_close(
            out.logits[:, begin:end], alone.logits[:, : len(sample)], atol=2e-5, rtol=1e-4
        )
        targets = int((row.labels[:, 1:] != -100).sum())
        loss_sum, target_count = loss_sum + alone.lm_loss * targets, target_count + targets
        begin = end
    assert begin == packed.input_ids.shape[1]
    torch.testing.assert_close(out.lm_loss, loss_sum / target_count, atol=2e-5, rtol=1e-4)
