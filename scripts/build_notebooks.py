"""Build notebooks/0*.ipynb (without outputs) from the cell lists below: edit here, then run this script.

    python scripts/build_notebooks.py            # rewrite the four notebooks
    python scripts/build_notebooks.py --check    # exit 1 if a committed notebook differs from its source here
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
REPO_URL = "https://github.com/dinotwins/dinotwins"
RAW_URL = "https://raw.githubusercontent.com/dinotwins/dinotwins/main"
COLAB_URL = "https://colab.research.google.com/github/dinotwins/dinotwins/blob/main/notebooks/{name}.ipynb"


def md(text: str) -> nbformat.NotebookNode:
    """A Markdown cell from an indented triple-quoted string."""
    return new_markdown_cell(textwrap.dedent(text).strip())


def code(text: str, tags: tuple[str, ...] = ()) -> nbformat.NotebookNode:
    """A code cell from an indented triple-quoted string, with optional cell tags."""
    cell = new_code_cell(textwrap.dedent(text).strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def title(name: str, heading: str, intro: str) -> nbformat.NotebookNode:
    """The first cell: heading, Open-in-Colab badge and introduction."""
    badge = (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
             f"({COLAB_URL.format(name=name)})")
    return md(f"# {heading}\n\n{badge}\n\n{textwrap.dedent(intro).strip()}")


def architecture(method: str) -> nbformat.NotebookNode:
    """A code cell showing the method's diagram (scripts/make_diagrams.py): the checkout's PNG, else GitHub's."""
    return code(f"""
        from IPython.display import Image

        ARCH = "../images/arch_{method}.png"  # drawn by scripts/make_diagrams.py
        Image(ARCH) if os.path.exists(ARCH) else Image(url="{RAW_URL}/images/arch_{method}.png")
    """)


SETUP = code(f"""
    # On Colab only: install dtlib from GitHub without reinstalling Colab's own torch, then look for a GPU.
    import sys

    if "google.colab" in sys.modules:
        import subprocess

        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "git+{REPO_URL}"], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "timm"], check=True)  # keeps the installed torch
        import torch

        if not torch.cuda.is_available():
            print("No GPU in this runtime: Runtime → Change runtime type → GPU (e.g. T4), then run again.\\n"
                  "On a CPU the notebook still runs, with the small cpu-mini preset.")
""")

# Shared by every parameters cell: where data and runs go, and the quick switch. Indented like the
# cells it is pasted into, so that their dedent still applies.
COMMON_PARAMETERS = textwrap.indent(textwrap.dedent("""
    DATA_DIR = os.environ.get("DTLIB_DATA")  # None: torchvision downloads CIFAR-10 to ~/.cache/dtlib/data
    RUNS_DIR = os.environ.get("DTLIB_RUNS", "runs")  # checkpoints and metrics.jsonl go to RUNS_DIR/<run>
    QUICK = os.environ.get("DTLIB_QUICK") == "1"  # smoke test: about a minute on a CPU (the tests use it)
""").strip(), " " * 8).lstrip()

PROBE_SUBSET = """
    # A fixed random subset of each split for the linear probe and kNN (None: the whole split).
    g = torch.Generator().manual_seed(0)
    train_idx = torch.randperm(len(train), generator=g)[:PROBE_TRAIN]
    test_idx = torch.randperm(len(test), generator=g)[:PROBE_TEST]
    probe_data = (train.images[train_idx], train.labels[train_idx], test.images[test_idx], test.labels[test_idx])
    HARDWARE = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    print(f"probe: {len(train_idx):,} train / {len(test_idx):,} test images, {PROBE_EPOCHS} epochs; {HARDWARE}")
"""

SCORE_COLUMNS = """{"run": "run", "linear_top1": "linear probe top-1 (%)", "knn_top1_k20": "kNN top-1, k = 20 (%)"}"""


# ------------------------------------------------------------------------------------------------ 01


NB01 = [
    title("01_barlow_twins", "01 · Barlow Twins", r"""
        **Barlow Twins** (Zbontar et al., 2021) learns image representations without labels. It shows a
        network two random distortions of the same image and asks for embeddings that

        * **agree** across the two views (*invariance*), and
        * spread information over **decorrelated** dimensions (*redundancy reduction*),

        both read off one matrix: the cross-correlation between the two views' embeddings, pushed towards
        the identity. There is no teacher, no stop-gradient, no momentum encoder and no negative pairs.

        In this notebook you will look at the two views, watch the cross-correlation matrix move from
        its value at initialisation towards the identity, see what the weight λ balances in the loss,
        and measure the learnt representation with a linear probe. Every number is computed by `dtlib`.
    """),
    SETUP,
    code("""
        %matplotlib inline
        import os

        import matplotlib.pyplot as plt
        import torch
        from IPython.display import Markdown, display

        from dtlib import build_method, build_schedules, build_view_maker
        from dtlib.config import make_config
        from dtlib.data import load_dataset
        from dtlib.evaluate import evaluate
        from dtlib.losses import cross_correlation
        from dtlib.plots import (markdown_table, plot_barlow_terms, plot_cross_correlation, plot_history,
                                 plot_schedules, show_views)
        from dtlib.tracking import LiveCurves
        from dtlib.train import fit, resolve_device
    """),
    code(f"""
        GPU = torch.cuda.is_available()
        PRESET = "cifar10-resnet18" if GPU else "cpu-mini"  # see dtlib.config.PRESETS
        EPOCHS = None  # None: the preset's (cpu-mini: 1; GPU presets: 200)
        BATCH_SIZE = None  # None: the preset's
        SUBSET = None  # training images, None: the preset's (all 50,000)
        PROBE_TRAIN, PROBE_TEST = (None, None) if GPU else (10_000, 10_000)  # probe images, None: all
        PROBE_EPOCHS = 100 if GPU else 50
        {COMMON_PARAMETERS}
        if QUICK:
            EPOCHS, BATCH_SIZE, SUBSET = 1, 32, 64
            PROBE_TRAIN, PROBE_TEST, PROBE_EPOCHS = 600, 300, 10
        SAVE_FIGURES = not QUICK and os.path.isdir("../images")  # README figures: full runs in a checkout only
    """, tags=("parameters",)),
    md(r"""
        ## The architecture

        One network — an encoder $f_\theta$ (here a ResNet) followed by a projector $g_\theta$ (an MLP) —
        embeds two augmented views $x^A = t(x)$ and $x^B = t'(x)$ of each image of a batch. The two
        branches share their weights; nothing else is needed. After training, the projector is thrown
        away and the encoder's output $y$ is the representation.
    """),
    architecture("barlow_twins"),
    md(r"""
        ## Data and views

        `dtlib` holds CIFAR-10 as `uint8` tensors and makes views on the fly, per sample and in batch:
        a random resized crop (20 – 100 % of the area, resized back to 32 px), a horizontal flip, colour
        jitter (probability 0.8), grayscale (0.2), and solarisation on the second view only — the two
        views are drawn from *different* distributions $\mathcal{T}$ and $\mathcal{T}'$. Gaussian blur,
        part of the ImageNet recipe, is off at 32 px, where it erases most of the image.
    """),
    code("""
        overrides = dict(epochs=EPOCHS, batch_size=BATCH_SIZE, subset=SUBSET)
        overrides = {k: v for k, v in overrides.items() if v is not None}  # None: the preset's
        cfg = make_config(PRESET, method="barlow_twins", data_dir=DATA_DIR, out=f"{RUNS_DIR}/01_barlow_twins",
                          **overrides)
        device = resolve_device(cfg.device)
        train, test = load_dataset(cfg.dataset, cfg.data_dir)
        print(f"{len(train):,} train / {len(test):,} test images; {cfg.backbone} trained on "
              f"{min(cfg.subset or len(train), len(train)):,} of them, {cfg.epochs} epoch(s), batch {cfg.batch_size}")
    """),
    code("""
        generator = torch.Generator().manual_seed(0)
        batch = train.images[torch.randperm(len(train), generator=generator)[:256]]  # (256, 3, 32, 32) uint8
        views = build_view_maker(cfg)(batch, generator)  # 2 x (256, 3, 32, 32), normalised
        fig = show_views(views, n_images=6, images=batch, titles=["view $x^A$", "view $x^B$"])
        fig
    """),
    md(r"""
        ## The loss

        Each dimension of the embeddings $z^A, z^B \in \mathbb{R}^{N \times D}$ is standardised over the
        batch (mean 0, variance 1), so that their cross-correlation is a $D \times D$ matrix of
        correlation coefficients between -1 and 1:

        $$\mathcal{C}_{ij} = \frac{1}{N} \sum_{b=1}^{N} \tilde z^A_{b,i}\, \tilde z^B_{b,j},
        \qquad \tilde z_{\cdot, i} = \frac{z_{\cdot, i} - \mu_i}{\sigma_i}.$$

        The loss pushes $\mathcal{C}$ to the identity:

        $$\mathcal{L}_{BT} = \underbrace{\sum_i \left(1 - \mathcal{C}_{ii}\right)^2}_{\text{invariance}}
        \; + \; \lambda \underbrace{\sum_i \sum_{j \neq i} \mathcal{C}_{ij}^2}_{\text{redundancy reduction}}.$$

        * $\mathcal{C}_{ii} = 1$: dimension $i$ takes the same value on both views of every image.
        * $\mathcal{C}_{ij} = 0$ for $i \neq j$: two dimensions carry different information.

        A constant embedding — the trivial solution of "make the views agree" — has zero variance and
        cannot have $\mathcal{C}_{ii} = 1$, which is why Barlow Twins does not collapse without any of
        the tricks DINO needs. Here is $\mathcal{C}$ of the very network training will start from
        (`fit` seeds the same way), on a batch of 256 image pairs:
    """),
    code("""
        torch.manual_seed(cfg.seed)
        model = build_method(cfg).eval()
        with torch.no_grad():
            z_a, z_b = (model.projector(model.backbone(v)) for v in views)  # (256, D) each
        c_init = cross_correlation(z_a, z_b)  # (D, D)
        plot_cross_correlation(c_init, title="at initialisation")
    """),
    md(r"""
        At initialisation the diagonal is far from 1 — a random network gives the two views of an image
        only weakly related embeddings — and the off-diagonal is not 0: its dimensions overlap. (The title
        gives both statistics over the whole $D \times D$ matrix; the heatmap shows its first 64 dimensions.)

        ## Training

        `fit` precomputes every schedule as an array over steps — here the learning rate (linear warm-up,
        then cosine) and the weight decay — so they can be checked before spending any compute:
    """),
    code("""
        steps_per_epoch = min(cfg.subset or len(train), len(train)) // cfg.batch_size
        schedules = build_schedules(cfg, steps_per_epoch)
        plot_schedules({k: schedules[k] for k in ("lr", "weight_decay")}, steps_per_epoch)
    """),
    md(r"""
        The curves below redraw as training runs (`LiveCurves` is a `fit` callback). `emb_std` is the
        standard deviation over the batch of the L2-normalised backbone features, averaged over
        dimensions: about $1/\sqrt{D}$ when the features are spread out, 0 when they collapse to a point.
    """),
    code("""
        live = LiveCurves(["loss", "emb_std"], smooth=5)
        result = fit(cfg, (train, test), callbacks=[live])
    """),
    md(r"""
        ## The cross-correlation after training

        The same 256 pairs of views, through the trained network:
    """),
    code("""
        model = result.model.eval()
        with torch.no_grad():
            z_a, z_b = (model.projector(model.backbone(v.to(device))) for v in views)
        c_trained = cross_correlation(z_a, z_b)
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained")
        plot_cross_correlation(c_init, ax=axes[0], title="at initialisation")
        plot_cross_correlation(c_trained, ax=axes[1], title=f"after {cfg.epochs} epoch(s) of Barlow Twins")
        if SAVE_FIGURES:
            fig.savefig("../images/01_cross_correlation.png", dpi=150, bbox_inches="tight")
    """),
    md(r"""
        The diagonal moves towards 1 and the off-diagonal towards 0: the matrix approaches the identity
        (the longer the run, the closer).

        ## What λ does

        The diagonal has $D$ entries, the off-diagonal $D(D-1)$. With $D$ in the hundreds or thousands,
        the redundancy term would swamp the invariance term unless it is scaled down: λ is of the order of
        $1/D$ (the paper uses $5 \cdot 10^{-3}$ for $D = 8192$; `dtlib` keeps it for CIFAR). Below, both
        terms for the two matrices above, at the λ used here and at ten times more: with the larger λ,
        the loss is dominated by decorrelating the dimensions and the views have less pull to agree.
    """),
    code("""
        plot_barlow_terms({"at initialisation": c_init, "trained": c_trained}, lambdas=(cfg.lambd, 10 * cfg.lambd))
    """),
    md(r"""
        ## The whole run

        The loss, the spread of the features and the learning rate over every logged step:
    """),
    code("""plot_history(result.history, ["loss", "emb_std", "lr"], smooth=5)"""),
    md(r"""
        ## Linear probe and kNN

        The representation is judged by what a *linear* classifier can read from it: the encoder is
        frozen, its features are extracted once (no augmentation), standardised with the training split's
        statistics, and a linear layer is trained on them with the labels; the reported number is its
        top-1 accuracy on test images. The weighted k-nearest-neighbour classifier (k = 20, cosine
        similarity, as in DINO) needs no training at all. A randomly initialised encoder, evaluated the
        same way, is the baseline that self-supervision has to beat.
    """),
    code(PROBE_SUBSET),
    code(f"""
        torch.manual_seed(cfg.seed)
        random_init = build_method(cfg).eval_backbone().to(device)
        scores = {{
            f"{{cfg.backbone}}, random init": evaluate(random_init, *probe_data, probe_epochs=PROBE_EPOCHS),
            f"{{cfg.backbone}}, Barlow Twins {{cfg.epochs}} epoch(s)": evaluate(
                result.model.eval_backbone(), *probe_data, probe_epochs=PROBE_EPOCHS),
        }}
        display(Markdown(markdown_table([{{"run": k, **v}} for k, v in scores.items()], {SCORE_COLUMNS})))
    """),
    md(r"""
        The gap to the random encoder grows with the training budget: the `cpu-mini` preset trains a small
        ResNet for one epoch on 16-px images, the GPU presets a ResNet-18 for 200 epochs at 32 px. The
        next notebook turns to DINO, which reaches the same goal — informative, non-collapsed features — by a
        very different route.
    """),
]


# ------------------------------------------------------------------------------------------------ 02


NB02 = [
    title("02_dino", "02 · DINO", r"""
        **DINO** (Caron et al., 2021: *self-distillation with no labels*) trains a **student** network to
        predict the output of a **teacher** network on a different crop of the same image. The teacher
        is not trained by gradient descent: its weights are an exponential moving average (EMA) of the
        student's. Both output a probability distribution over $K$ learnt *prototypes*.

        Nothing in this loss forbids a trivial solution — every image mapped to the same distribution.
        DINO avoids it with two opposite operations on the teacher's output, **centering** and
        **sharpening**. In this notebook you will look at multi-crop views and at the two distributions,
        take centering and sharpening apart on toy logits, then train twice — with and without
        centering — and watch the second run collapse.
    """),
    SETUP,
    code("""
        %matplotlib inline
        import math
        import os

        import matplotlib.pyplot as plt
        import torch
        from IPython.display import Markdown, display

        from dtlib import build_method, build_schedules, build_view_maker
        from dtlib.config import make_config
        from dtlib.data import load_dataset
        from dtlib.diagnostics import entropy
        from dtlib.evaluate import evaluate
        from dtlib.losses import DINOLoss
        from dtlib.plots import markdown_table, plot_distributions, plot_history, plot_schedules, show_views
        from dtlib.tracking import LiveCurves
        from dtlib.train import fit, resolve_device
    """),
    code(f"""
        GPU = torch.cuda.is_available()
        PRESET = "cifar10-resnet18" if GPU else "cpu-mini"  # see dtlib.config.PRESETS
        EPOCHS = None  # None: the preset's (cpu-mini: 1; GPU presets: 200) — every run below uses it
        BATCH_SIZE = None  # None: the preset's
        SUBSET = None  # training images, None: the preset's (all 50,000)
        # Runs compared with full DINO, each a set of config changes.
        ABLATIONS = {{
            "no centering": dict(centering=False),
            "no sharpening": dict(teacher_temp=0.1, teacher_temp_warmup=False),  # teacher temp = student temp
        }}
        PROBE_TRAIN, PROBE_TEST = (None, None) if GPU else (10_000, 10_000)  # probe images, None: all
        PROBE_EPOCHS = 100 if GPU else 50
        {COMMON_PARAMETERS}
        if QUICK:
            EPOCHS, BATCH_SIZE, SUBSET = 1, 32, 64
            ABLATIONS = {{"no centering": ABLATIONS["no centering"]}}
            PROBE_TRAIN, PROBE_TEST, PROBE_EPOCHS = 600, 300, 10
        SAVE_FIGURES = not QUICK and os.path.isdir("../images")  # README figures: full runs in a checkout only
    """, tags=("parameters",)),
    md(r"""
        ## The architecture

        Student and teacher have the same architecture: a backbone $f$ and a DINO head $h$ (an MLP, an
        L2-normalised bottleneck and a weight-normalised linear layer whose $K$ rows are the prototypes).
        The student sees every crop; the teacher only the two global ones. The teacher's output is
        centred and sharpened, and no gradient flows into it: it changes only through the EMA.
    """),
    architecture("dino"),
    md(r"""
        ## Multi-crop

        Each image gives two **global** crops (32 px, 30 – 100 % of the image) and several **local**
        crops (16 px, 5 – 30 %). The student must predict, from a small local crop, what the teacher
        says about a global view: a *local-to-global* correspondence that pushes the features towards
        what the object is rather than where the crop was taken. The grid is drawn to scale.
    """),
    code("""
        overrides = dict(epochs=EPOCHS, batch_size=BATCH_SIZE, subset=SUBSET)
        overrides = {k: v for k, v in overrides.items() if v is not None}  # None: the preset's
        base = dict(method="dino", data_dir=DATA_DIR, **overrides)
        cfg = make_config(PRESET, **base, out=f"{RUNS_DIR}/02_dino")
        device = resolve_device(cfg.device)
        train, test = load_dataset(cfg.dataset, cfg.data_dir)
        generator = torch.Generator().manual_seed(0)
        batch = train.images[torch.randperm(len(train), generator=generator)[:256]]  # (256, 3, 32, 32) uint8
        views = build_view_maker(cfg)(batch, generator)  # 2 global (256, 3, 32, 32) + n_local (256, 3, 16, 16)
        fig = show_views(views, n_images=5, images=batch,
                         titles=["global 1", "global 2"] + [f"local {i + 1}" for i in range(cfg.n_local)])
        fig
    """),
    md(r"""
        ## The loss

        For a crop $x$, the student's distribution over the $K$ prototypes is a softmax at temperature
        $\tau_s$, and the teacher's a softmax of its **centred** logits at a **lower** temperature $\tau_t$:

        $$P_s(x) = \operatorname{softmax}\!\left(\frac{g_{\theta_s}(x)}{\tau_s}\right), \qquad
        P_t(x) = \operatorname{softmax}\!\left(\frac{g_{\theta_t}(x) - c}{\tau_t}\right).$$

        The loss is the cross-entropy between them, over every pair of a global crop seen by the teacher
        and a *different* crop seen by the student:

        $$\mathcal{L}_{DINO} = \sum_{x \in \{x^g_1, x^g_2\}} \; \sum_{\substack{x' \in V \\ x' \neq x}}
        H\big(P_t(x), P_s(x')\big), \qquad H(a, b) = -\sum_k a_k \log b_k.$$

        The centre $c$ and the teacher's weights are moving averages:

        $$c \leftarrow m_c\, c + (1 - m_c)\, \frac{1}{B} \sum_{i=1}^{B} g_{\theta_t}(x_i), \qquad
        \theta_t \leftarrow m\, \theta_t + (1 - m)\, \theta_s,$$

        with $m$ following a cosine schedule from 0.996 (0.99 on `cpu-mini`) to 1, and the teacher
        temperature warming up from 0.04 to its final value. The schedules, precomputed by `fit`:
    """),
    code("""
        steps_per_epoch = min(cfg.subset or len(train), len(train)) // cfg.batch_size
        plot_schedules(build_schedules(cfg, steps_per_epoch), steps_per_epoch)
    """),
    md(r"""
        ## Teacher and student at initialisation

        One image, through the network training will start from: the teacher's target on global crop 1
        (sharp, $\tau_t$ = 0.04 at the start of the warm-up) and the student's prediction on a local crop
        (soft, $\tau_s$ = 0.1), and the teacher's distribution averaged over the batch.
    """),
    code("""
        torch.manual_seed(cfg.seed)
        model = build_method(cfg).eval()
        with torch.no_grad():
            teacher_logits = model.teacher.head(model.teacher.backbone(views[0]))  # (256, K), global crop 1
            student_logits = model.student.head(model.student.backbone(views[-1]))  # (256, K), a local crop
        p_teacher = model.loss_fn.teacher_probs(teacher_logits, cfg.warmup_teacher_temp)
        p_student = torch.softmax(student_logits / cfg.student_temp, dim=-1)
        plot_distributions({"teacher, global crop 1, image 0": p_teacher[0],
                            "student, local crop, image 0": p_student[0],
                            "teacher, mean over the batch": p_teacher.mean(0)})
    """),
    md(r"""
        A random network maps all images to similar features, so the batch mean is often dominated by a
        few prototypes that every image prefers. That shared component is exactly what centering removes.
    """),
    md(r"""
        ## Centering and sharpening, one at a time

        Two ways to fail: **every image gets the same one-hot target** (one prototype wins everywhere),
        or **every target is uniform**. Both are constant solutions the student can match perfectly. The
        two entropies below tell them apart:

        * the mean entropy of each image's target $H(P_t(x))$: low when targets are confident;
        * the entropy of the batch-mean target $H(\overline{P_t})$: high when different images pick
          different prototypes.

        A healthy teacher has a low first and a high second. Toy logits make the point with
        `DINOLoss` itself: each image has random preferences, plus a bias towards prototype 0 that every
        image shares — the beginning of a collapse.
    """),
    code("""
        K, B = 256, 512
        g = torch.Generator().manual_seed(0)
        logits = torch.randn(B, K, generator=g)  # each image's own preferences ...
        logits[:, 0] += 5.0  # ... plus one prototype that every image prefers
        temps = [0.02, 0.04, 0.07, 0.1, 0.2, 0.5, 1.0, 2.0]
        toy = {}
        for centering in (False, True):
            loss_fn = DINOLoss(K, center_momentum=0.0, centering=centering)
            loss_fn.update_center([logits])  # momentum 0: the centre is this batch's mean logit
            toy[centering] = [loss_fn.teacher_probs(logits, t) for t in temps]  # (B, K) per temperature

        fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.6), sharey=True, layout="constrained")
        for ax, per_image in zip(axes, (True, False)):
            for centering, probs in toy.items():
                values = [entropy(p if per_image else p.mean(0, keepdim=True)).item() for p in probs]
                ax.plot(temps, values, "o-", label=f"centering {'on' if centering else 'off'}")
            ax.axhline(math.log(K), color="0.5", linestyle="--", label="ln K: uniform")
            ax.set(xscale="log", xlabel=r"teacher temperature $\\tau_t$",
                   title="entropy of each image's target" if per_image else "entropy of the batch-mean target")
        axes[0].set_ylabel("nats")
        axes[0].legend();
    """),
    md(r"""
        * **Without centering** (blue), the shared bias wins at low temperature: each target is one-hot
          *and* the batch mean is one-hot — every image is sent to prototype 0. Sharpening alone
          *encourages* this collapse to one dimension.
        * **Centering** (orange) subtracts what all images have in common, so the batch-mean target stays
          spread over the prototypes at every temperature. But at high temperature — no sharpening — each
          image's target is itself almost uniform: centering alone encourages the *uniform* collapse.
        * Only the combination — centering **and** a low $\tau_t$ — gives confident targets that differ
          between images.

        The three cases for one image, and the batch mean where it differs from it:
    """),
    code("""
        sharp, soft = temps.index(0.04), temps.index(2.0)
        plot_distributions({"sharpening only (τ = 0.04, no centering), image 1": toy[False][sharp][1],
                            "sharpening only, batch mean": toy[False][sharp].mean(0),
                            "centering only (τ = 2), image 1": toy[True][soft][1],
                            "centering + sharpening (τ = 0.04), image 1": toy[True][sharp][1],
                            "centering + sharpening, batch mean": toy[True][sharp].mean(0)})
    """),
    md(r"""
        ## Training DINO

        The curves follow the collapse diagnostics every logged step: the teacher's entropy (its ceiling is
        $\ln K$), the KL divergence between teacher and student (0 when the student matches the teacher
        perfectly — which a collapsed pair does), and the spread of the backbone features.
    """),
    code("""
        K = cfg.out_dim
        reference = {"teacher_entropy": (math.log(K), "ln K")}
        live = LiveCurves(["loss", "teacher_entropy", "kl", "emb_std"], hlines=reference, smooth=5)
        result = fit(cfg, (train, test), callbacks=[live])
    """),
    md(r"""
        ## Collapse, live

        The same run again — same seed, same data, same budget — with one of DINO's two safeguards
        removed (`dtlib.config.Config` has a switch for each):
    """),
    code("""
        configs, runs = {"full DINO": cfg}, {"full DINO": result}
        for name, changes in ABLATIONS.items():
            configs[name] = make_config(PRESET, **base, **changes, out=f"{RUNS_DIR}/02_dino_{name.replace(' ', '_')}")
            runs[name] = fit(configs[name], (train, test))
        fig = plot_history({name: r.history for name, r in runs.items()}, ["teacher_entropy", "kl", "emb_std"],
                           hlines=reference, smooth=5)
        if SAVE_FIGURES:
            fig.savefig("../images/02_collapse.png", dpi=150, bbox_inches="tight")
        fig
    """),
    md(r"""
        Without centering the teacher's entropy falls towards 0 — one prototype for every image — and the
        KL follows it to 0: the student has nothing left to learn. Without sharpening ($\tau_t = \tau_s$)
        the entropy climbs towards $\ln K$: uniform targets. How far each run gets depends on the budget
        (the table at the end gives the final values). The teacher's distributions after training:
    """),
    code("""
        probs = {}
        for name, r in runs.items():
            m = r.model.eval()
            with torch.no_grad():
                logits = m.teacher.head(m.teacher.backbone(views[0].to(device)))  # (256, K)
            p = m.loss_fn.teacher_probs(logits, configs[name].teacher_temp)
            probs[f"{name}: image 0"] = p[0]
            probs[f"{name}: batch mean"] = p.mean(0)
        plot_distributions(probs)
    """),
    md(r"""
        ## Linear probe and kNN

        Frozen **teacher** backbones (the one DINO evaluates), a linear classifier trained on their
        features, and a weighted kNN (k = 20):
    """),
    code(PROBE_SUBSET),
    code(f"""
        rows = []
        for name, r in runs.items():
            scores = evaluate(r.model.eval_backbone(), *probe_data, probe_epochs=PROBE_EPOCHS)
            final_entropy = sum(row["teacher_entropy"] for row in r.history[-20:]) / len(r.history[-20:])
            rows.append({{"run": name, **scores, "entropy": final_entropy}})
        columns = {{**{SCORE_COLUMNS}, "entropy": "final teacher entropy (nats)"}}
        display(Markdown(markdown_table(rows, columns)))
    """),
    md(r"""
        Collapsed features carry little information about the image, and the probe shows it. The DINO
        paper trains for hundreds of epochs; at the `cpu-mini` scale the differences are smaller but the
        curves above already tell the story. The next notebook asks whether a Barlow Twins term can take
        over the role of DINO's safeguards.
    """),
]


# ------------------------------------------------------------------------------------------------ 03


NB03 = [
    title("03_dinotwins", "03 · DINO Twins", r"""
        **DINO Twins** adds a Barlow Twins loss to DINO: a separate projector $g_\phi$ on the student's
        backbone features of the two global crops, with its own cross-correlation loss, weighted by β.

        Barlow Twins cannot collapse to a constant (its diagonal term needs variance in every
        dimension), while DINO depends on a careful balance — centering, a teacher-temperature warm-up, a
        momentum schedule. The question of this project: **does the Barlow Twins term make DINO stable
        enough to drop those safeguards?** This notebook trains DINO Twins, runs a small version of that
        ablation live, shows the recorded CPU-scale ablation, and compares the three methods with the
        original project's reported numbers.
    """),
    SETUP,
    code("""
        %matplotlib inline
        import json
        import math
        import os
        from pathlib import Path

        import torch
        from IPython.display import Markdown, display

        from dtlib import build_method, build_view_maker
        from dtlib.config import make_config
        from dtlib.data import load_dataset
        from dtlib.evaluate import evaluate
        from dtlib.plots import markdown_table, plot_history
        from dtlib.tracking import LiveCurves
        from dtlib.train import fit, resolve_device
    """),
    code(f"""
        GPU = torch.cuda.is_available()
        PRESET = "cifar10-resnet18" if GPU else "cpu-mini"  # see dtlib.config.PRESETS
        EPOCHS = None  # None: the preset's (cpu-mini: 1; GPU presets: 200) — every run below uses it
        BATCH_SIZE = None  # None: the preset's
        SUBSET = None  # training images, None: the preset's (all 50,000)
        BETA = None  # weight of the Barlow Twins term, None: the preset's (5e-3)
        # DINO's safeguards, all removed at once: no centering, no teacher-temperature warm-up, fixed momentum.
        REMOVED = dict(centering=False, teacher_temp_warmup=False, momentum_schedule="fixed")
        ABLATIONS = {{
            "DINO": dict(beta=0.0),  # β = 0 is plain DINO, exactly
            "DINO, safeguards removed": dict(beta=0.0, **REMOVED),
            "DINO Twins, safeguards removed": dict(REMOVED),
        }}
        PROBE_TRAIN, PROBE_TEST = (None, None) if GPU else (10_000, 10_000)  # probe images, None: all
        PROBE_EPOCHS = 100 if GPU else 50
        {COMMON_PARAMETERS}
        if QUICK:
            EPOCHS, BATCH_SIZE, SUBSET = 1, 32, 64
            ABLATIONS = {{k: v for k, v in ABLATIONS.items() if "removed" in k}}
            PROBE_TRAIN, PROBE_TEST, PROBE_EPOCHS = 600, 300, 10
        SAVE_FIGURES = not QUICK and os.path.isdir("../images")  # README figures: full runs in a checkout only
    """, tags=("parameters",)),
    md(r"""
        ## The architecture

        DINO's student–teacher pair is unchanged. A second head, the Barlow Twins projector $g_\phi$, reads
        the *student's* backbone features of the two global crops; the teacher never sees it. Both losses
        train the same student backbone:

        $$\mathcal{L} = \mathcal{L}_{DINO} + \beta\, \mathcal{L}_{BT}, \qquad
        \mathcal{L}_{BT} = \sum_i \left(1 - \mathcal{C}_{ii}\right)^2
        + \lambda \sum_i \sum_{j \neq i} \mathcal{C}_{ij}^2,$$

        where $\mathcal{C}$ is the cross-correlation of $g_\phi$'s embeddings of the two global crops
        (notebook 01) and $\mathcal{L}_{DINO}$ the cross-entropy between the teacher's and the student's
        distributions over prototypes (notebook 02).
    """),
    architecture("dinotwins"),
    md(r"""
        ## The two terms at initialisation

        $\mathcal{L}_{DINO}$ is a cross-entropy, at most about $\ln K$; $\mathcal{L}_{BT}$ sums $D^2$ squared
        correlations and starts in the hundreds. β brings them to the same scale:
    """),
    code("""
        overrides = dict(epochs=EPOCHS, batch_size=BATCH_SIZE, subset=SUBSET, beta=BETA)
        overrides = {k: v for k, v in overrides.items() if v is not None}  # None: the preset's
        base = dict(method="dinotwins", data_dir=DATA_DIR, **overrides)
        cfg = make_config(PRESET, **base, out=f"{RUNS_DIR}/03_dinotwins")
        device = resolve_device(cfg.device)
        train, test = load_dataset(cfg.dataset, cfg.data_dir)
        generator = torch.Generator().manual_seed(0)
        batch = train.images[torch.randperm(len(train), generator=generator)[:128]]  # (128, 3, 32, 32) uint8
        torch.manual_seed(cfg.seed)
        with torch.no_grad():
            _, logs = build_method(cfg)(build_view_maker(cfg)(batch, generator), teacher_temp=cfg.warmup_teacher_temp)
        print(f"L_DINO = {logs['loss_dino']:.2f} (ln K = {math.log(cfg.out_dim):.2f});  L_BT = {logs['loss_bt']:.1f};  "
              f"β = {cfg.beta:g}, so β·L_BT = {cfg.beta * logs['loss_bt']:.2f};  L = {logs['loss']:.2f}")
    """),
    md(r"""
        ## Training DINO Twins

        With every DINO safeguard in place. The panels show both terms, the teacher's entropy and the
        spread of the features:
    """),
    code("""
        reference = {"teacher_entropy": (math.log(cfg.out_dim), "ln K")}
        live = LiveCurves(["loss_dino", "loss_bt", "teacher_entropy", "emb_std"], hlines=reference, smooth=5)
        result = fit(cfg, (train, test), callbacks=[live])
    """),
    md(r"""
        ## The ablation, live

        Now remove DINO's safeguards — centering, the teacher-temperature warm-up and the momentum
        schedule (the momentum stays at its initial value instead of rising to 1) — with and without the
        Barlow Twins term. Same seed, data and budget as the run above. (`DTLIB_QUICK=1` keeps only the two
        runs without safeguards.)
    """),
    code("""
        runs = {"DINO Twins": result}
        for name, changes in ABLATIONS.items():
            runs[name] = fit(make_config(PRESET, **{**base, **changes}, out=f"{RUNS_DIR}/03_{name.replace(' ', '_')}"),
                             (train, test))
        fig = plot_history({name: r.history for name, r in runs.items()}, ["loss_dino", "teacher_entropy", "emb_std"],
                           hlines=reference, smooth=5)
        if SAVE_FIGURES:
            fig.savefig("../images/03_ablation.png", dpi=150, bbox_inches="tight")
        fig
    """),
    code(PROBE_SUBSET),
    code(f"""
        live_rows = []
        for name, r in runs.items():
            scores = evaluate(r.model.eval_backbone(), *probe_data, probe_epochs=PROBE_EPOCHS)
            tail = r.history[-20:]
            live_rows.append({{"run": name, "beta": f"{{r.config.beta:g}}", **scores,
                               "entropy": sum(row["teacher_entropy"] for row in tail) / len(tail)}})
        columns = {{**{SCORE_COLUMNS}, "beta": "β", "entropy": "final teacher entropy (nats)"}}
        display(Markdown(markdown_table(live_rows, columns)))
        print(f"{{cfg.backbone}}, {{cfg.epochs}} epoch(s) on {{min(cfg.subset or len(train), len(train)):,}} images, "
              f"one seed, {{HARDWARE}}")
    """),
    md(r"""
        One seed and a short budget: a hint, not a result. The recorded ablation below repeats each
        configuration over several seeds.

        ## The recorded ablation

        `results/ablation*.json` hold the same ablation at CPU scale (`scripts/ablation.py`), with the
        command, commit and hardware that produced each; `ablation_2epochs` used an earlier, shorter
        `cpu-mini` recipe (2 epochs of a 10k subset):
    """),
    code("""
        names = {"linear_top1": "linear top-1 (%)", "knn_top1_k20": "kNN top-1, k = 20 (%)",
                 "final_teacher_entropy": "teacher entropy (nats)", "final_emb_std": "embedding std",
                 "train_seconds": "training time (s)"}
        recorded_files = sorted(Path("../results").glob("ablation*.json"))
        for ablation_path in recorded_files:
            recorded = json.loads(ablation_path.read_text())
            metrics = [k.removesuffix("_mean") for k in recorded["rows"][0] if k.endswith("_mean")]
            rows = [{"name": r["name"], "method": r["method"], "seeds": r.get("seeds"),
                     "changes": ", ".join(f"{k}={v}" for k, v in (r.get("changes") or {}).items()) or "—",
                     **{m: f"{r[m + '_mean']:.4g} ± {r.get(m + '_std', 0.0):.2g}" for m in metrics if m + "_mean" in r}}
                    for r in recorded["rows"]]
            columns = {"name": "configuration", "method": "method", "changes": "changes", "seeds": "seeds",
                       **{m: f"{names.get(m, m)}, mean ± std" for m in metrics}}
            display(Markdown(f"**`results/{ablation_path.name}`**"))
            display(Markdown(markdown_table(rows, columns)))
            print(f"data: {recorded.get('data')}\\nhardware: {recorded.get('hardware')}\\n"
                  f"command: {recorded.get('command')} (commit {recorded.get('commit')})")
        if not recorded_files:
            display(Markdown("*The CPU-scale ablation has not been recorded yet "
                             "(no `results/ablation*.json`).*"))
    """),
    md(r"""
        ## The three methods, next to the original project

        The original DINO Twins project reported the linear-probe accuracies below (CIFAR-10, 100% of the
        labels for the probe). Ours come from the runs of this notebook and, where present, from the runs
        recorded in `results/*.json` — each with the backbone, budget and hardware that produced it, since
        a one-epoch CPU run and a 200-epoch GPU run are not the same experiment.
    """),
    code("""
        reported = [  # the original project's numbers, as it reported them
            {"method": "Barlow Twins", "backbone": "ResNet-50", "linear_top1": 80.3},
            {"method": "DINO", "backbone": "ResNet-50", "linear_top1": 48.7,
             "note": "a bug in the original code, not a result of the method"},
            {"method": "DINO Twins", "backbone": "ResNet-50", "linear_top1": 85.3},
            {"method": "DINO Twins", "backbone": "ViT-T/4", "linear_top1": 78.2},
        ]
        rows = [{**r, "source": "original project (reported)"} for r in reported]
        budget = f"{cfg.epochs} epoch(s), {min(cfg.subset or len(train), len(train)):,} images, {HARDWARE}"
        for row in live_rows:
            if row["run"] in ("DINO Twins", "DINO"):  # the runs with every safeguard
                rows.append({"method": row["run"], "backbone": cfg.backbone, "linear_top1": row["linear_top1"],
                             "source": "this notebook", "note": budget})
        method_names = {"barlow_twins": "Barlow Twins", "dino": "DINO", "dinotwins": "DINO Twins"}
        for path in sorted(Path("../results").glob("*.json")):
            saved = json.loads(path.read_text())
            if isinstance(saved, dict) and "linear_top1" in saved and "method" in saved:
                config = saved.get("config", {})
                note = f"{config.get('epochs', '?')} epochs, {config.get('subset') or 'all'} images"
                if saved.get("hardware"):
                    note += f", {saved['hardware']}"
                rows.append({"method": method_names.get(saved["method"], saved["method"]),
                             "backbone": saved.get("backbone"), "linear_top1": saved["linear_top1"],
                             "source": f"results/{path.name}", "note": note})
            elif isinstance(saved, dict) and "rows" in saved:  # a scripts/ablation.py table: its unchanged methods
                for r in saved["rows"]:
                    if r["method"] in method_names and not r.get("changes") and "linear_top1_mean" in r:
                        rows.append({"method": method_names[r["method"]], "backbone": "resnet_mini (cpu-mini)",
                                     "linear_top1": f"{r['linear_top1_mean']:.2f} ± {r['linear_top1_std']:.2f}",
                                     "source": f"results/{path.name}",
                                     "note": f"{r['seeds']} seeds, {saved.get('hardware')}, "
                                             f"commit {saved.get('commit')}"})
        columns = {"method": "method", "backbone": "backbone", "linear_top1": "linear top-1 (%)", "source": "source",
                   "note": "budget, hardware, note"}
        display(Markdown(markdown_table(rows, columns)))
    """),
    md(r"""
        The original project's DINO number (48.7 %) came from a bug in its DINO implementation, so its
        "DINO Twins beats DINO by 37 points" does not measure the method. Here all three methods share one
        training loop, one augmentation code and one evaluation, and DINO is DINO Twins with β = 0,
        exactly.
    """),
]


# ------------------------------------------------------------------------------------------------ 04


NB04 = [
    title("04_attention_maps", "04 · Attention maps of a ViT trained with DINO Twins", r"""
        A Vision Transformer cuts an image into patches — here 4×4 pixels, so a CIFAR-10 image is an 8×8 grid
        of 64 tokens — and adds a [CLS] token whose final state is the image's representation. In the last
        block, the [CLS] token's attention over the patches shows *where the network looks*. The DINO
        paper found that self-supervised ViTs attend to objects without ever being told what an object is.

        This notebook loads (or briefly trains) a ViT-T/4 with DINO Twins, shows each head's [CLS]
        attention on CIFAR-10 test images and on larger natural photos, DINO's masks holding 60 % of the
        attention mass, the same for a randomly initialised ViT, and an interactive viewer.
    """),
    SETUP,
    code("""
        %matplotlib inline
        import os

        import skimage.data
        import torch
        from IPython.display import display

        from dtlib import load_trained
        from dtlib.attention import cls_attention, crop_resize, normalize
        from dtlib.backbones import build_backbone
        from dtlib.config import make_config
        from dtlib.data import load_dataset
        from dtlib.plots import plot_attention
        from dtlib.train import fit, resolve_device
        from dtlib.widgets import AttentionViewer
    """),
    code(f"""
        GPU = torch.cuda.is_available()
        # A DINO Twins vit_tiny checkpoint, e.g. from `python -m dtlib train --preset cifar10-vit-tiny`.
        # None (or a missing file): train one here, briefly.
        CHECKPOINT = os.environ.get("DTLIB_CHECKPOINT")
        PRESET = "cifar10-vit-tiny" if GPU else "cpu-mini"  # for the run here; see dtlib.config.PRESETS
        EPOCHS = None  # None: the preset's (cpu-mini: 1; cifar10-vit-tiny: 200)
        BATCH_SIZE = None  # None: the preset's
        # On a CPU a ViT-T step costs roughly 8x the FLOPs of a resnet_mini one: 5,000 images keep it short.
        SUBSET = None if GPU else 5_000  # training images, None: the preset's (all 50,000)
        PHOTO_SIZE = 128  # natural photos are resized to this (32 x 32 patches of 4 px)
        KEEP = 0.6  # DINO's masks keep the smallest set of patches holding this fraction of the attention
        {COMMON_PARAMETERS}
        if QUICK:
            EPOCHS, BATCH_SIZE, SUBSET, PHOTO_SIZE = 1, 16, 16, 64
        SAVE_FIGURES = not QUICK and os.path.isdir("../images")  # README figures: full runs in a checkout only
    """, tags=("parameters",)),
    architecture("dinotwins"),
    md(r"""
        ## The model

        DINO evaluates — and looks at — the **teacher**'s backbone. A checkpoint rebuilds its own model
        and config; without one, a short DINO Twins run with `backbone="vit_tiny"` stands in (expect its
        maps to be far less object-like than those of a 200-epoch GPU run).
    """),
    code("""
        train, test = load_dataset("cifar10", DATA_DIR)
        if CHECKPOINT and os.path.exists(CHECKPOINT):
            model, cfg = load_trained(CHECKPOINT)
            print(f"loaded {CHECKPOINT}: {cfg.method}, {cfg.backbone}, {cfg.epochs} epochs")
        else:
            overrides = dict(epochs=EPOCHS, batch_size=BATCH_SIZE, subset=SUBSET)
            overrides = {k: v for k, v in overrides.items() if v is not None}  # None: the preset's
            cfg = make_config(PRESET, method="dinotwins", backbone="vit_tiny", data_dir=DATA_DIR,
                              out=f"{RUNS_DIR}/04_vit_tiny", **overrides)
            model = fit(cfg, (train, test)).model
        device = resolve_device("auto")
        vit = model.eval_backbone().to(device).eval()  # the teacher's ViT
    """),
    md(r"""
        ## [CLS] attention on CIFAR-10

        Six test images, one per class. For each of the 3 heads of the last block: the attention weight from the
        [CLS] token to each of the 8×8 patches (softmax row, [CLS] column excluded), then the mean over heads.
    """),
    code("""
        idx = [int((test.labels == c).nonzero()[0]) for c in range(len(test.classes))][:6]
        images = test.images[idx]  # (6, 3, 32, 32) uint8
        attn = cls_attention(vit, normalize(images).to(device)).cpu()  # (6, heads, 8, 8)
        plot_attention(images, attn, names=[test.classes[test.labels[i]] for i in idx])
    """),
    md(r"""
        ## DINO's masks

        For each map, the smallest set of patches holding 60 % of its attention mass; the rest is darkened.
        Peaked attention gives small masks on the object, diffuse attention large masks that cover everything.
    """),
    code("""plot_attention(images, attn, keep=KEEP, names=[test.classes[test.labels[i]] for i in idx])"""),
    md(r"""
        ## Natural photos at higher resolution

        The same network on `PHOTO_SIZE` = 128 px photos from scikit-image: 32×32 = 1,024 patches, where it
        was trained on 64 (16 under `cpu-mini`, whose images are 16 px). The position embeddings are
        interpolated to the larger grid by the backbone (`dynamic_img_size`), so the weights run unchanged.
    """),
    code("""
        names = ["astronaut", "chelsea", "coffee", "rocket"]
        photos = [crop_resize(getattr(skimage.data, name)(), PHOTO_SIZE) for name in names]  # 4 x (128, 128, 3)
        x = torch.cat([normalize(p) for p in photos]).to(device)  # (4, 3, 128, 128), normalised like CIFAR-10
        photo_attn = cls_attention(vit, x).cpu()  # (4, heads, 32, 32): one weight per 4 x 4 patch
        fig = plot_attention(photos, photo_attn, names=names)
        if SAVE_FIGURES:
            fig.savefig("../images/04_attention_photos.png", dpi=150, bbox_inches="tight")
        fig
    """),
    code("""plot_attention(photos, photo_attn, keep=KEEP, names=names)"""),
    md(r"""
        ## For contrast: a ViT that has learnt nothing

        A randomly initialised ViT-T/4 of the same shape. Its [CLS] attention follows low-level colour and
        brightness — the maps look like filtered copies of the photo — rather than singling out an object.
        (Each heatmap is scaled to its own range.)
    """),
    code("""
        torch.manual_seed(0)
        random_vit = build_backbone("vit_tiny", img_size=cfg.image_size).to(device).eval()
        random_attn = cls_attention(random_vit, x).cpu()
        plot_attention(photos, random_attn, names=names)
    """),
    code("""plot_attention(photos, random_attn, keep=KEEP, names=names)"""),
    md(r"""
        ## Explore

        Pick an image, a layer and a head (or their mean), switch between the heatmap and the mask, move the
        mask threshold, or upload your own photo. Earlier layers attend locally; the last ones globally.
    """),
    code("""
        viewer = AttentionViewer(vit, photos + list(images.permute(0, 2, 3, 1).numpy()),
                                 names=names + [test.classes[test.labels[i]] for i in idx])
        if not QUICK:  # widgets need a live front end; a headless run only checks that the viewer builds
            display(viewer)
    """),
]

NOTEBOOKS = {
    "01_barlow_twins": NB01,
    "02_dino": NB02,
    "03_dinotwins": NB03,
    "04_attention_maps": NB04,
}


def build(name: str, cells: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    """A notebook with deterministic cell ids (stable diffs) and Colab's GPU runtime requested."""
    nb = new_notebook(cells=[nbformat.from_dict(dict(cell)) for cell in cells])
    for i, cell in enumerate(nb.cells):
        cell.id = f"{name[:2]}-{i:02d}"
    nb.metadata = {
        "accelerator": "GPU",
        "colab": {"provenance": []},
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    return nb


def main() -> int:
    """Write every notebook, or with --check report the ones that differ from this script."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--out", type=Path, default=NOTEBOOKS_DIR)
    args = parser.parse_args()
    stale = []
    for name, cells in NOTEBOOKS.items():
        nb = build(name, cells)
        nbformat.validate(nb)
        path = args.out / f"{name}.ipynb"
        text = nbformat.writes(nb) + "\n"
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path)
            continue
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    for path in stale:
        print(f"{path} differs from scripts/build_notebooks.py: run python scripts/build_notebooks.py")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
