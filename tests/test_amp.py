"""Mixed precision across device kinds (dtlib/amp.py): evaluation autocasts like training, and a run resumes
from a checkpoint of another device kind (an empty GradScaler state, a CPU/CUDA generator state)."""

import importlib

import pytest
import torch

from dtlib.amp import amp_dtype, autocast, load_scaler_state, restore_rng
from dtlib.checkpoint import load_checkpoint, rng_state
from dtlib.train import fit
from tests.test_train import tiny_config, tiny_data

evaluate_module = importlib.import_module("dtlib.evaluate")  # the package re-exports a function of that name
train_module = importlib.import_module("dtlib.train")


@pytest.mark.parametrize("native_bf16, expected", [(True, torch.bfloat16), (False, torch.float16)])
def test_evaluation_autocasts_in_the_training_dtype(monkeypatch, native_bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: native_bf16)
    seen = []

    class Recorder(torch.autocast):
        def __init__(self, device_type, dtype=None, **kw):
            seen.append((device_type, dtype))
            super().__init__("cpu", dtype=torch.bfloat16, enabled=False)

    monkeypatch.setattr(torch, "autocast", Recorder)
    autocast("cuda")
    assert seen == [("cuda", expected)] and amp_dtype(torch.device("cuda")) == expected
    assert isinstance(autocast("cpu"), type(autocast("cpu", enabled=False)))  # fp32 on CPU: no autocast


def test_extract_features_uses_the_training_autocast(monkeypatch):
    calls = []

    def spy(device, enabled=True):
        calls.append(torch.device(device).type)
        return autocast(device, enabled)

    monkeypatch.setattr(evaluate_module, "autocast", spy)
    evaluate_module.extract_features(torch.nn.Flatten(), torch.zeros(4, 3, 2, 2, dtype=torch.uint8), batch_size=2)
    assert calls == ["cpu", "cpu"]


def test_an_enabled_scaler_starts_fresh_from_an_empty_state_with_a_warning():
    scaler = torch.amp.GradScaler("cpu", enabled=True, init_scale=1024.0)
    with pytest.raises(RuntimeError):  # what torch does with it: the crash this guards against
        scaler.load_state_dict(torch.amp.GradScaler("cpu", enabled=False).state_dict())
    with pytest.warns(UserWarning, match="fresh scaler"):
        load_scaler_state(scaler, {})
    assert scaler.get_scale() == 1024.0
    saved = torch.amp.GradScaler("cpu", enabled=True, init_scale=8.0).state_dict()
    load_scaler_state(scaler, saved)  # a real state still loads
    assert scaler.get_scale() == 8.0


def test_a_generator_state_of_another_device_kind_is_reseeded_from_seed_and_step():
    generator = torch.Generator().manual_seed(3)
    state = rng_state(generator)
    state["augment"] = torch.zeros(16, dtype=torch.uint8)  # a CUDA (Philox) generator's state: 16 bytes
    with pytest.warns(UserWarning, match="reseeded"):
        restore_rng(state, generator, seed=3, step=40)
    expected = torch.Generator().manual_seed(3 * 1_000_003 + 40)
    assert torch.equal(torch.rand(5, generator=generator), torch.rand(5, generator=expected))


def test_fit_resumes_a_bf16_or_cpu_checkpoint_with_an_fp16_scaler_and_a_foreign_generator(tmp_path, monkeypatch):
    data = tiny_data()
    first = fit(tiny_config(tmp_path, epochs=1, amp=False), data)  # a disabled scaler: an empty state
    path = tmp_path / "checkpoint.pt"
    payload = load_checkpoint(path)
    assert payload["scaler"] == {}
    payload["rng"]["augment"] = torch.zeros(16, dtype=torch.uint8)  # as if written by a CUDA run
    torch.save(payload, path)
    # This run's scaler is enabled, as an fp16 run's on a T4 (CPU autocast in fp16 here).
    monkeypatch.setattr(train_module, "amp_dtype", lambda device, enabled=True: torch.float16)
    with pytest.warns(UserWarning) as record:
        resumed = fit(tiny_config(tmp_path, epochs=2), data, resume=True)
    messages = " ".join(str(w.message) for w in record)
    assert "fresh scaler" in messages and "reseeded" in messages
    assert resumed.step == 2 * first.step and resumed.history[-1]["step"] == resumed.step - 1
    assert load_checkpoint(path)["scaler"]["scale"] == 65536.0

