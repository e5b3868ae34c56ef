"""The training-side mitigations (issue 18 part 2) as variants of the audit (core.run.variants).

    variant_tasks(context) -> list[Task]     listed in core.run.variants.BUILDERS

For each mitigation the config asks for (core.mitigation.catalog, kind "training"), one task per
(variant, replicate); each task fine-tunes replicate r's pretrained encoder with replicate r's
seed and labelled rows (the FinetuneConfig of core.run.training.finetune_config_for), so a
variant differs from its base by the mitigation alone:

    fairness-penalty  BCE + lambda * a soft between-group gap (core.learning.debias.penalty),
                      lambda in PENALTY_WEIGHTS   -> "{base}+penalty-l{lambda}"
    adversarial       a gradient-reversal adversary on the embedding (core.learning.debias.adversary),
                      alpha = ADVERSARY_ALPHA     -> "{base}+adversarial-a{alpha}"
    pruning           the encoder magnitude-pruned, then fine-tuned with its zeros kept
                      (core.learning.debias.pruning), sparsity in SPARSITIES -> "{base}+pruned{s}"
    wide-shallow      an encoder of twice the width and half the depth (core.learning.debias.shape),
                      pretrained inside the task with the same method, epochs and seed -> "{base}+wide-shallow"

The base is "{method}+{s}", s the heaviest strategy chosen (`full` by default; the order of
core.vocabulary.STRATEGIES). Each variant fine-tunes with s too, but for the penalty and the
adversary, which need the mini-batch loop: when s is `linear` or `bn-stats` (a frozen encoder and
an L-BFGS head) they fine-tune with `full` and are still compared with s (their mitigation
params say "strategy"). The groups are those of the first sensitive attribute; the penalty's gap
is the one the report leads with (core.results.measure_choice: the equalized-odds gap unless the
outcome's effect says otherwise). Every variant is a TrainedClassifier (save, load and Explain as
before) carrying `base` and `mitigation` = {"name", "kind": "training", "base", "params"}, kept
in its saved model.json's extra too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from core.errors import Cancelled
from core.learning.debias.adversary import AdversarialRemoval
from core.learning.debias.hook import TrainingHook
from core.learning.debias.penalty import CONDITIONS, FairnessPenalty
from core.learning.debias.pruning import KeepPruned, prune_encoder, realised_sparsity
from core.learning.debias.shape import wide_shallow
from core.learning.finetune.config import FinetuneConfig
from core.learning.finetune.strategies import HEAD_ONLY
from core.learning.pretrain import PretrainConfig, pretrain
from core.learning.ssl.views import FeatureLayout
from core.mitigation.catalog import MITIGATIONS, TRAINING
from core.results.measure_choice import choose_measure
from core.run.parallel import Task, send_event, stop_requested
from core.run.training import finetune_config_for, finetune_one
from core.run.variants import VARIANT, VariantContext
from core.vocabulary import STRATEGIES, model_name

#: The penalty's weights swept by default (one variant each): a light, a middle and a strong push.
PENALTY_WEIGHTS: tuple[float, ...] = (0.5, 2.0, 8.0)
#: The adversary's reversal weight.
ADVERSARY_ALPHA = 1.0
#: The pruning sparsities swept by default (one variant each).
SPARSITIES: tuple[float, ...] = (0.5, 0.8, 0.95)
#: The gap the penalty softens when the report's leading gap has no soft version.
DEFAULT_GAP = "equalized_odds_difference"


@dataclass(frozen=True)
class FinetuneInputs:
    """Replicate r's fine-tuning, as core.run.training.finetune_one takes it (picklable)."""

    config: FinetuneConfig
    encoder: Any
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    method: str
    threads: int
    replicate: int
    device: str
    precision: str

    def run(self, name: str, *, encoder: Any = None, hook: TrainingHook | None = None, strategy: str | None = None):
        config = self.config if strategy is None else replace(self.config, strategy=strategy)
        return finetune_one(config, self.encoder if encoder is None else encoder, None, self.X_train, self.y_train,
                            self.X_val, self.y_val, self.method, self.threads, self.replicate, self.device,
                            self.precision, hook=hook, name=name)


def variant_tasks(context: VariantContext) -> list[Task]:
    """The tasks of every training-side mitigation in context.config.mitigations (module docstring)."""
    config = context.config
    asked = [name for name in config.mitigations if MITIGATIONS[name].kind == TRAINING]
    if not asked:
        return []
    strategy = max(config.strategies, key=STRATEGIES.index)
    base = model_name(config.method, strategy)
    trainable = "full" if strategy in HEAD_ONLY else strategy  # what the penalty and the adversary train
    attribute = config.sensitive[0]
    codes = pd.factorize(context.study.data.groups[attribute].astype(str), sort=True)[0]
    measure = choose_measure(config.outcome_effect)["measure"]
    gap = measure if measure in CONDITIONS else DEFAULT_GAP
    X, split = context.study.X, context.study.split
    tasks: list[Task] = []
    for r, seed in enumerate(config.replicate_seeds):
        rows = context.labelled[r]
        inputs = FinetuneInputs(finetune_config_for(config, len(split.labelled_train), strategy, seed),
                                context.pretrained[r].encoder, X[rows], context.study.labels(rows),
                                X[split.validation], context.study.labels(split.validation), config.method,
                                config.threads, r, context.device, context.precision)
        groups, labels = codes[rows], inputs.y_train

        def task(name: str, function, *args) -> Task:
            return Task(VARIANT, (name, r), function, (inputs, name, base, *args))

        if "fairness-penalty" in asked:
            tasks += [task(f"{base}+penalty-l{weight:g}", penalised, FairnessPenalty(groups, labels, weight=weight, gap=gap),
                           trainable, {"lambda": weight, "gap": gap, "attribute": attribute})
                      for weight in PENALTY_WEIGHTS]
        if "adversarial" in asked:
            tasks.append(task(f"{base}+adversarial-a{ADVERSARY_ALPHA:g}", adversarial,
                              AdversarialRemoval(groups, alpha=ADVERSARY_ALPHA, random_state=seed), trainable,
                              {"alpha": ADVERSARY_ALPHA, "attribute": attribute}))
        if "pruning" in asked:
            tasks += [task(f"{base}+pruned{sparsity:g}", pruned, sparsity) for sparsity in SPARSITIES]
        if "wide-shallow" in asked:
            tasks.append(task(f"{base}+wide-shallow", wider_shallower, context.pretrained[r].config,
                              X[split.pretrain], FeatureLayout.from_encoder(context.study.encoder)))
    return tasks


def penalised(inputs: FinetuneInputs, name: str, base: str, hook: TrainingHook, strategy: str,
              params: dict) -> Any:
    """Fine-tuning with the fairness penalty (core.learning.debias.penalty)."""
    return _as_variant(inputs.run(name, hook=hook, strategy=strategy), "fairness-penalty", base,
                       {**params, "strategy": strategy})


def adversarial(inputs: FinetuneInputs, name: str, base: str, hook: TrainingHook, strategy: str,
                params: dict) -> Any:
    """Fine-tuning with the gradient-reversal adversary (core.learning.debias.adversary)."""
    return _as_variant(inputs.run(name, hook=hook, strategy=strategy), "adversarial", base,
                       {**params, "strategy": strategy})


def pruned(inputs: FinetuneInputs, name: str, base: str, sparsity: float) -> Any:
    """The pretrained encoder pruned to `sparsity`, fine-tuned with its zeros kept (a frozen encoder
    keeps them without a hook)."""
    encoder = prune_encoder(inputs.encoder, sparsity)
    hook = None if inputs.config.strategy in HEAD_ONLY else KeepPruned(sparsity)
    model = inputs.run(name, encoder=encoder, hook=hook)
    return _as_variant(model, "pruning", base, {"sparsity": sparsity,
                                                "realised_sparsity": realised_sparsity(model.encoder)})


def wider_shallower(inputs: FinetuneInputs, name: str, base: str, pretrain_config: PretrainConfig,
                    X_pretrain: np.ndarray, layout: FeatureLayout) -> Any:
    """A wider, shallower encoder pretrained like replicate r's own (method, epochs, seed), then fine-tuned."""
    torch.set_num_threads(inputs.threads)
    shape = wide_shallow(inputs.encoder.config)
    encoder_settings = {k: v for k, v in shape.to_dict().items() if k != "input_dim"}

    def on_event(event: dict) -> None:  # shown as this variant's progress, not as the audit's pretraining
        send_event({**event, "stage": "finetune", "model": name, "replicate": inputs.replicate,
                    "message": f"{name}: pretraining the wider, shallower encoder"})

    result = pretrain(X_pretrain, inputs.X_val, layout, replace(pretrain_config, encoder=encoder_settings),
                      on_event=on_event, should_stop=stop_requested)
    if result.cancelled:
        raise Cancelled(f"pretraining of {name} cancelled")
    model = inputs.run(name, encoder=result.encoder)
    model.extra["pretraining"] = {"epochs_completed": result.epochs_completed, "best_epoch": result.best_epoch,
                                  "seconds": result.elapsed_seconds}
    return _as_variant(model, "wide-shallow", base, {"hidden_dim": shape.hidden_dim, "depth": shape.depth})


def _as_variant(model: Any, mitigation: str, base: str, params: dict) -> Any:
    """`base` and `mitigation` on the model (core.run.variants' contract), and in its saved extra."""
    model.base = base
    model.mitigation = {"name": mitigation, "kind": TRAINING, "base": base, "params": params}
    model.extra["mitigation"] = model.mitigation
    return model
