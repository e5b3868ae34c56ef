"""Batched replicates: the R training replicates of one recipe trained as one batched model.

    pretrain_replicates(X_train, X_val, layout, configs, *, on_event=None, should_stop=None)
        -> list[PretrainResult]          results[r] as pretrain(X_train, X_val, layout, configs[r])
    finetune_replicates(encoders, X_train, y_train, X_val, y_val, configs, *, pretraining,
                        encoder_config=None, on_event=None, should_stop=None, device="cpu",
                        precision="fp32")
        -> list[TrainedClassifier]       models[r] as finetune(encoders[r], X_train[r], y_train[r],
                                                               X_val, y_val, configs[r], ...)
    train_supervised_replicates(X_train, y_train, X_val, y_val, configs, encoder_config, ...)
        -> list[TrainedClassifier]       the supervised baseline's replicates (train_supervised)

The configs of one call differ only in `seed` (ValueError otherwise); X_train and y_train of
the fine-tuning calls are sequences, one labelled training set per replicate (the pipeline's
`X[labelled[r]]`, `study.labels(labelled[r])`), the validation rows are shared. Pretraining's
device and precision come from the configs, fine-tuning's from the arguments (as finetune's).

How: `torch.func.stack_module_state` stacks the replicas' parameters and buffers, and
`torch.vmap` over `torch.func.functional_call` runs every replica's forward pass in one call
(core.learning.batched.stacking). Everything random is drawn outside vmap, per replicate, from
the replicate's own generator, so every replicate sees the batches and views of its solo run;
AdamW is elementwise, so one AdamW over the stacks is R AdamWs; BatchNorm statistics, EMA
teachers, early stopping and validation are per replicate. On CPU the batched and solo runs
agree to rounding (tests/unit/test_batched_replicates.py); batching is the lever on a GPU,
where these small models are bound by kernel launches; on CPU it is slower (docs/ssl.md).

Modules: replica_set (what the configs share, the events' replicate key), stacking
(`StackedReplicas`), pretraining (`pretrain_replicates`), finetuning (`finetune_replicates`).
"""

from core.learning.batched.finetuning import finetune_replicates, train_supervised_replicates
from core.learning.batched.pretraining import pretrain_replicates

__all__ = ["finetune_replicates", "pretrain_replicates", "train_supervised_replicates"]
