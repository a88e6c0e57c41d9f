"""A DINO step written by hand from dtlib's public pieces reproduces fit's weights bit for bit on a CPU,
as notebook 02 shows: views -> student on every crop -> teacher under no_grad -> loss -> backward -> step -> EMA."""

import torch

from dtlib import build_method, build_schedules, build_view_maker, fit
from dtlib.optim import build_optimizer
from dtlib.train import epoch_permutation, prepare_data, seed_everything, set_hyperparameters, train_subset
from tests.test_train import tiny_config, tiny_data


def test_hand_written_dino_steps_equal_fit(tmp_path):
    cfg = tiny_config(tmp_path / "fit", method="dino", steps=5, epochs=1, batch_size=8)
    data = tiny_data()
    result = fit(cfg, data)

    seed_everything(cfg.seed)
    train, _ = prepare_data(cfg, data)
    images, _ = train_subset(cfg, train)
    model = build_method(cfg).train()
    optimizer = build_optimizer(cfg.optimizer, model, cfg.lr, cfg.weight_decay, cfg.head_lr_scale)
    n_steps = len(images) // cfg.batch_size
    schedules = build_schedules(cfg, n_steps)
    generator = torch.Generator().manual_seed(cfg.seed)
    make_views = build_view_maker(cfg)
    perm = epoch_permutation(cfg.seed, 0, len(images), torch.device("cpu"))
    for step in range(cfg.steps):
        batch = images[perm[step * cfg.batch_size:(step + 1) * cfg.batch_size]]
        set_hyperparameters(optimizer, schedules, step)
        views = make_views(batch, generator, (0, 1))
        loss, _ = model(views, teacher_temp=float(schedules["teacher_temp"][step]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
        if step < round(cfg.freeze_last_layer * n_steps):
            for p in model.last_layer_parameters():
                p.grad = None
        optimizer.step()
        model.update_teacher(float(schedules["momentum"][step]))
    for (name, mine), theirs in zip(model.state_dict().items(), result.model.state_dict().values()):
        assert torch.equal(mine, theirs), name
