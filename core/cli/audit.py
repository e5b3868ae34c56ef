"""`equiscope audit`: the whole audit from the command line, recorded in the workspace.

Output is all or nothing: the audit writes into a temporary folder beside DIR and is renamed
to DIR only when it succeeds (an earlier DIR is replaced). A failed or interrupted audit
leaves no half-written DIR; its temporary folder is removed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
from pathlib import Path

from core.cli._format import text_table
from core.cli._progress import ProgressBar
from core.cli.pretrain import METHOD_NAMES, add_threads_argument
from core.errors import InputError
from core.mitigation.catalog import parse_mitigations
from core.processes import pid_alive
from core.run.config import AuditConfig  # light: the defaults without torch (core.run.config's docstring)
from core.vocabulary import BASELINES, STRATEGIES, SUPERVISED, model_name
from core.workspace.store import Workspace


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # One source of the defaults: AuditConfig (the dashboard's full preset reads them too).
    default = {name: spec.default for name, spec in AuditConfig.__dataclass_fields__.items()}
    strategies = ",".join(STRATEGIES)
    parser.add_argument("--data", help="a bundled dataset name or a CSV/Parquet/Excel path (the table to train on, "
                                       "or the table an outside --model is applied to)")
    parser.add_argument("--predictions", help="audit a table of a model's predictions instead of training: the "
                                              "outcome, the sensitive columns and model columns (--scores/--decisions)")
    parser.add_argument("--scores", help="with --predictions: comma-separated score columns (probability of the "
                                         "positive outcome, in [0, 1]); each is a model named after its column")
    parser.add_argument("--decisions", help="with --predictions: comma-separated decision columns (0/1 or the "
                                            "outcome's labels); each is a model named after its column")
    parser.add_argument("--threshold", type=float, help="with --scores: a case is positive when its score reaches "
                                                        "this (default 0.5)")
    parser.add_argument("--reference", help="with uploaded models: the model every other one is compared with "
                                            "(default: the first named)")
    parser.add_argument("--model", help="an outside model file audited on the table's test rows, beside the models "
                                        "Equiscope trains (or alone with --strategies none): scikit-learn saved with "
                                        "skops (.skops) or ONNX (.onnx); never pickle or joblib")
    parser.add_argument("--trust-types", default="",
                        help="with a .skops --model: comma-separated types the file uses that skops does not trust "
                             "by default, accepted by name after review")
    parser.add_argument("--target", required=True, help="the outcome column")
    parser.add_argument("--sensitive", required=True, help="comma-separated sensitive attributes, e.g. sex,race")
    parser.add_argument("--positive", help="the target value that counts as positive, or a threshold on a numeric "
                        "target: '>=10' (also '>', '<=', '<')")
    parser.add_argument("--method", default=default["method"],
                        help=f"SSL pretraining method: {METHOD_NAMES} (default %(default)s)")
    parser.add_argument("--strategies", default=strategies,
                        help="comma-separated fine-tuning strategies (default %(default)s); with --model, 'none' "
                             "audits the outside model alone, without training")
    parser.add_argument("--baselines", default=",".join(BASELINES),
                        help="comma-separated classical baselines fitted beside the MLPs on the same rows, or none "
                             "(default %(default)s)")
    parser.add_argument("--federated-by", default=None, metavar="COLUMN",
                        help="also pretrain federated: the pretraining rows split into sites by COLUMN (a region, a "
                             "hospital), each site training on its own rows and only model updates averaged "
                             "(Flower, FedAvg); its models '{method}-fed+{strategy}' are compared with the central ones")
    parser.add_argument("--federated-rounds", type=int, default=default["federated_rounds"],
                        help="with --federated-by: rounds of local training and averaging (default %(default)s)")
    parser.add_argument("--federated-local-epochs", type=int, default=default["federated_local_epochs"],
                        help="with --federated-by: passes over its own rows each site makes per round "
                             "(default %(default)s)")
    parser.add_argument("--federated-strategy", default=default["federated_strategy"],
                        help="with --federated-by: the server's aggregation (default %(default)s)")
    parser.add_argument("--dp-epsilon", default="",
                        help="also train differentially private versions of the ordinary model and of the full "
                             "fine-tuning, one per target epsilon, e.g. 1,3,8 (smaller: more private; docs/privacy.md)")
    parser.add_argument("--dp-delta", type=float, default=None,
                        help="with --dp-epsilon: the privacy delta (default 1 / the labelled training rows)")
    parser.add_argument("--dp-max-grad-norm", type=float, default=default["dp_max_grad_norm"],
                        help="with --dp-epsilon: each row's gradient is clipped to this norm (default %(default)s)")
    parser.add_argument("--mitigations", default="none",
                        help="comma-separated mitigations added as variants of the trained models, all, or none "
                             "(default %(default)s; 'equiscope mitigations' lists them)")
    parser.add_argument("--mitigation-sweep", action="store_true",
                        help="fit each fairlearn reduction at several constraint bounds (a curve) instead of one")
    parser.add_argument("--label-fraction", type=float, default=default["label_fraction"],
                        help="share of training labels used (0, 1]")
    parser.add_argument("--epochs", type=int, default=default["epochs"], help="pretraining epochs (default %(default)s)")
    parser.add_argument("--finetune-epochs", type=int, default=default["finetune_epochs"],
                        help="most fine-tuning epochs; early stopping may end sooner (default %(default)s)")
    parser.add_argument("--patience", "--finetune-patience", dest="finetune_patience", type=int,
                        default=default["finetune_patience"],
                        help="fine-tuning's early stopping: epochs without a better validation loss before a "
                             "strategy stops, 1 or more (default %(default)s)")
    parser.add_argument("--pretrain-patience", type=int, default=default["pretrain_patience"],
                        help="pretraining's early stopping, the same for the SSL encoder; 0 never stops early "
                             "(default %(default)s)")
    parser.add_argument("--n-boot", type=int, default=default["n_boot"],
                        help="bootstrap resamples for CIs (default %(default)s)")
    parser.add_argument("--replicates", type=int, default=default["replicates"],
                        help="independent trainings of every model, each with its own seed derived from --seed; "
                             "verdicts then cover training randomness too. 1 is a first look whose verdicts cover "
                             "one training run only (default %(default)s)")
    parser.add_argument("--seed", type=int, default=default["seed"])
    add_threads_argument(parser)
    parser.add_argument("--device", default=default["device"], choices=["auto", "cpu", "cuda"],
                        help="where the models train: auto is CUDA where present, else the CPU (default %(default)s)")
    parser.add_argument("--precision", default=default["precision"], choices=["auto", "fp32", "bf16"],
                        help="training arithmetic: auto is bfloat16 where the device computes it natively (a CUDA "
                             "GPU, a CPU with AVX-512 BF16 or AMX), fp32 elsewhere (default %(default)s)")
    parser.add_argument("--no-umap", action="store_true", help="skip the UMAP projections")
    parser.add_argument("--include-pii", action="store_true",
                        help="let columns flagged as personal data into features and reports")
    parser.add_argument("--unaware", action="store_true",
                        help="keep the sensitive attributes out of the models' features (unaware training); the "
                             "leakage probes then show what the representation carries through other columns")
    parser.add_argument("--outcome-effect", choices=("helps", "harms"), default=None,
                        help="whether the positive outcome helps the person (a loan, a release) or harms them (a "
                             "denial, an arrest flag): the report then says who each gap favours")
    parser.add_argument("--workspace", default="equiscope-workspace",
                        help="workspace where the run is recorded (default ./equiscope-workspace)")
    parser.add_argument("--out", required=True, help="folder for report.json, predictions.parquet, report.html")


def run(args: argparse.Namespace) -> int:
    if args.predictions or (args.model and args.strategies.strip().lower() == "none"):
        return _run_uploaded(args)
    if not args.data:
        raise InputError("Give the table to audit (--data), or a table of predictions (--predictions)",
                         "Run 'equiscope audit --help' for the options")
    for flag in ("scores", "decisions", "threshold", "reference"):
        if getattr(args, flag) is not None:
            raise InputError(f"--{flag} goes with --predictions", "Give the predictions table with --predictions")
    from core.run.pipeline import headline, run_audit  # here: torch, scikit-learn, umap-learn (not for --help)

    config = AuditConfig(data=args.data, target=args.target, positive=args.positive,
                         sensitive=[s.strip() for s in args.sensitive.split(",") if s.strip()],
                         method=args.method, strategies=[s.strip() for s in args.strategies.split(",") if s.strip()],
                         baselines=[] if args.baselines.strip().lower() == "none"
                         else [b.strip() for b in args.baselines.split(",") if b.strip()],
                         label_fraction=args.label_fraction, epochs=args.epochs, finetune_epochs=args.finetune_epochs,
                         finetune_patience=args.finetune_patience, pretrain_patience=args.pretrain_patience,
                         n_boot=args.n_boot, seed=args.seed, replicates=args.replicates, umap=not args.no_umap,
                         include_pii=args.include_pii,
                         unaware=args.unaware, threads=args.threads, device=args.device, precision=args.precision,
                         outcome_effect=args.outcome_effect,
                         model=str(Path(args.model).expanduser().resolve()) if args.model else None,
                         trust_types=_names(args.trust_types), mitigations=parse_mitigations(args.mitigations),
                         dp_epsilon=_epsilons(args.dp_epsilon), dp_delta=args.dp_delta,
                         dp_max_grad_norm=args.dp_max_grad_norm,
                         mitigation_sweep=args.mitigation_sweep, federated_by=args.federated_by,
                         federated_rounds=args.federated_rounds, federated_local_epochs=args.federated_local_epochs,
                         federated_strategy=args.federated_strategy)
    config.validate()
    _check_outside_name(config)
    if args.n_boot < 0:
        raise InputError(f"--n-boot must be 0 or more, got {args.n_boot}", "Use 1000 for reporting, 0 to skip CIs")
    return _audit_into(args, f"{config.method} audit of {config.data}", config.to_dict(),
                       lambda partial, on_event: run_audit(config, partial, on_event=on_event), headline)


def _run_uploaded(args: argparse.Namespace) -> int:
    """`--predictions FILE` (models given as columns) or `--model FILE --strategies none` (an
    outside model alone on the table's test rows): audited without training (core.run.uploaded)."""
    from core.run.pipeline import headline  # here: pandas, torch (not for --help)
    from core.run.uploaded import OUTSIDE_MODEL_STUDY, UploadedConfig, run_uploaded_audit

    if args.predictions and (args.model or args.data):
        raise InputError("--predictions is audited on its own", "Give either --predictions, or --data with --model")
    if args.model and not args.data:
        raise InputError("An outside --model needs the table it is applied to", "Give it with --data")
    if args.predictions and not (args.scores or args.decisions):
        raise InputError("Name the model columns of the predictions table",
                         "Give --scores COL[,COL...] for probabilities, --decisions COL[,COL...] for 0/1 decisions")
    if args.threshold is not None and not args.scores:
        raise InputError("--threshold goes with --scores", "Decisions are already 0/1; drop --threshold")
    config = UploadedConfig(
        data=args.predictions or args.data, target=args.target, positive=args.positive,
        sensitive=_names(args.sensitive), scores=_names(args.scores), decisions=_names(args.decisions),
        threshold=0.5 if args.threshold is None else args.threshold, reference=args.reference,
        model=str(Path(args.model).expanduser().resolve()) if args.model else None,
        trust_types=_names(args.trust_types), n_boot=args.n_boot, seed=args.seed,
        kind=OUTSIDE_MODEL_STUDY if args.model else "predictions")
    config.validate()
    what = f"model {Path(args.model).name} on {args.data}" if args.model else f"predictions in {args.predictions}"
    return _audit_into(args, f"Audit of {what}", config.to_dict(),
                       lambda partial, on_event: run_uploaded_audit(config, partial, on_event=on_event), headline)


def _check_outside_name(config: AuditConfig) -> None:
    """An outside model is named after its file's stem, which must not be the name of a model
    Equiscope trains beside it (the report and the run folder name every model once)."""
    if not config.model:
        return
    stem = Path(config.model).stem
    trained = [model_name(config.method, s) for s in config.strategies] + [SUPERVISED, *config.baselines]
    if stem in trained:
        raise InputError(f"The model file '{Path(config.model).name}' would be named '{stem}', like a model "
                         "Equiscope trains in this audit", "Rename the file (its stem names the model)")


def _names(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def _epsilons(text: str) -> list[float]:
    """--dp-epsilon 1,3,8 -> [1.0, 3.0, 8.0]; a value that is not a number is bad input."""
    try:
        return [float(value) for value in _names(text)]
    except ValueError:
        raise InputError(f"--dp-epsilon takes numbers, got '{text}'", "Use e.g. --dp-epsilon 1,3,8") from None


def _audit_into(args: argparse.Namespace, name: str, config: dict, audit, headline) -> int:
    """Run `audit(partial_folder, on_event)` recorded in the workspace, all or nothing into --out."""
    out = Path(args.out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"--out '{out}' is a file", "Give a folder path")
    _remove_stale_partials(out)
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    # `kill` (SIGTERM) ends the audit like Ctrl-C: marked cancelled, partial folder removed.
    signal.signal(signal.SIGTERM, _interrupt)
    workspace = Workspace(args.workspace)
    run_id = workspace.create_run("audit", name, {**config, "out": str(out)})
    workspace.start_run(run_id)
    bar = ProgressBar()
    try:
        report = audit(partial, lambda event: (bar.update(event), workspace.add_event(run_id, event)))
        if out.exists():
            shutil.rmtree(out)
        partial.rename(out)
    except BaseException as error:
        bar.close()
        shutil.rmtree(partial, ignore_errors=True)
        status = "cancelled" if isinstance(error, KeyboardInterrupt) else "failed"
        workspace.finish_run(run_id, status, error=str(error).splitlines()[0][:300] if str(error) else type(error).__name__)
        raise
    bar.close()
    workspace.finish_run(run_id, "succeeded", metrics=headline(report))
    _print_summary(report, out)
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def _remove_stale_partials(out: Path) -> None:
    """Partial folders of audits whose process is gone (killed with SIGKILL, or the machine
    stopped): nothing can finish them, so they are removed before a new audit into `out`."""
    for folder in out.parent.glob(f".{out.name}.partial-*"):
        pid = folder.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _print_summary(report: dict, out: Path) -> None:
    from core.results.folder import HTML_REPORT, PREDICTIONS, REPORT, ReportView  # here: pandas, not for --help
    from core.results.summary import ONE_RUN_NOTICE

    view = ReportView(report)
    first = view.sensitive[0]
    rows = []
    for model in view.models:
        gap, ci = model.gaps(first), model.gap_ci(first, "equalized_odds_difference")
        rows.append([model.name, f"{model.overall['accuracy']:.3f}", f"{gap['worst_group_accuracy']:.3f}",
                     f"{gap['equalized_odds_difference']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")])
    print(text_table(rows, ["model", "accuracy", f"worst group ({first})", f"equalized odds gap ({first}) [95% CI]"],
                     indent=""))
    if view.one_training_run:
        print(f"\n{ONE_RUN_NOTICE}", file=sys.stderr)
    print(f"\nWrote {out}/{REPORT}, {PREDICTIONS}" +
          (f", {HTML_REPORT}" if (out / HTML_REPORT).exists() else ""), file=sys.stderr)
