"""The differentially private variants of an audit (core.run.variants' builder, issue 19).

For every epsilon E in config.dp_epsilon, per replicate r:
    supervised+dp-eps{E}           the supervised baseline trained privately from scratch (base "supervised")
    {method}+full+dp-eps{E}        the pretrained encoder's `full` fine-tuning, trained privately
                                   (base "{method}+full"), when "full" is among config.strategies;
                                   else {method}+linear+dp-eps{E} (head only) when "linear" is;
                                   else no private pretrained model (the other strategies train
                                   BatchNorm statistics or scale/shift, which per-sample gradients
                                   cannot, or choose stages on validation)
Each one starts from its base's fine-tuning settings (its FinetuneConfig: seed r, learning rate,
batch size, epochs) and replicate r's labelled rows and encoder, so the comparison with the base
isolates the privacy mechanism (clipping, noise, frozen BatchNorm, no early stopping), which is
what a reviewer asks it to cost. core.learning.private says what the guarantee covers.
"""

from __future__ import annotations

from core.learning.finetune.config import FinetuneConfig
from core.run.parallel import Task, send_event, stop_requested
from core.run.variants import VARIANT, VariantContext
from core.vocabulary import SUPERVISED, model_name

#: The pretrained strategies with a private version, first found in config.strategies wins.
PRETRAINED_PRIVATE = ("full", "linear")


def private_name(base: str, epsilon: float) -> str:
    """"scarf+full+dp-eps3": the base's name and the target epsilon (safe for a folder name)."""
    return f"{base}+dp-eps{float(epsilon):g}"


def private_bases(strategies: list[str], method: str) -> list[str]:
    """The models that get a private version (module docstring), in that order."""
    pretrained = next((s for s in PRETRAINED_PRIVATE if s in strategies), None)
    return [SUPERVISED] + ([model_name(method, pretrained)] if pretrained else [])


def variant_tasks(context: VariantContext) -> list[Task]:
    """One task per (epsilon, base, replicate); [] unless config.dp_epsilon names a value."""
    config = context.config
    epsilons = list(getattr(config, "dp_epsilon", None) or [])
    tasks = []
    for epsilon in epsilons:
        for base in private_bases(list(config.strategies), config.method):
            for r in range(len(context.models)):
                base_model = context.model(r, base)
                rows = context.labelled[r]
                study = context.study
                encoder = None if base == SUPERVISED else context.pretrained[r].encoder
                tasks.append(Task(VARIANT, (private_name(base, epsilon), r), train_private, (
                    base_model.config, encoder, base_model.encoder.config, study.X[rows], study.labels(rows),
                    study.X[study.split.validation], study.labels(study.split.validation), private_name(base, epsilon),
                    base, base_model.pretraining, float(epsilon), config.dp_delta, float(config.dp_max_grad_norm),
                    int(config.threads), r)))
    return tasks


def train_private(base_config: dict, encoder, encoder_config, X_train, y_train, X_val, y_val, name: str, base: str,
                  pretraining: str | None, epsilon: float, delta: float | None, max_grad_norm: float, threads: int,
                  replicate: int):
    """One private model (a worker process may run it); its events carry "replicate"."""
    import torch  # here: the builder module stays importable without loading torch twice in the parent

    from core.learning.private import private_finetune  # loads Opacus: only when a private model trains

    torch.set_num_threads(threads)
    config = FinetuneConfig.from_dict({**base_config, "strategy": base_config.get("strategy", SUPERVISED)})
    return private_finetune(encoder, X_train, y_train, X_val, y_val, config, name=name, base=base,
                            pretraining=pretraining, target_epsilon=epsilon, delta=delta, max_grad_norm=max_grad_norm,
                            encoder_config=encoder_config,
                            on_event=lambda event: send_event({**event, "replicate": replicate}),
                            should_stop=stop_requested)
