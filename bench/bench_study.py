"""Entry "study_by_column" (issue 22, tables larger than memory): the peak memory of making an
audit's study (prepare, split, fit the encoder, find the proxies, encode every row to disk) from
bench/million_rows.py's seeded 1,000,000 x 50 Parquet table, read one column at a time
(`Study.create_mapped`, what `equiscope audit` does with a Parquet file) against its peer, the
same study from the table read whole (`Study.create` + `map_to_disk`, what it did before and still
does for CSV and Excel). Each in its own process (peak RSS from os.wait4), same run, same file;
ratio = peer's peak / ours. The two encoded matrices are checked equal (sha256).

    python -m bench.bench_study [--quick]          # --quick: 100,000 rows, results-quick.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

from bench.common import GB, PYTHON, ROOT, machine_line, merge_result, run_measured
from bench.million_rows import MILLION, NUMERIC, write_planted_table


def child(how: str, data: Path, folder: Path) -> None:
    """Make the study one way; print the matrix's sha256 and the study's shape as JSON."""
    import time

    import numpy as np

    from core.data.columns import open_columns
    from core.data.source import open_source
    from core.data.spec import DatasetSpec
    from core.data.study import Study

    spec = DatasetSpec(target="outcome", sensitive=("group",), positive_label="1")
    started = time.perf_counter()
    if how == "by_column":
        study = Study.create_mapped(open_columns(data), spec, folder)
    else:
        study = Study.create(open_source(data), spec)
        study.map_to_disk(folder)
    seconds = time.perf_counter() - started
    digest = hashlib.sha256()
    for start in range(0, len(study.X), 65_536):
        digest.update(np.ascontiguousarray(study.X[start:start + 65_536]).tobytes())
    print(json.dumps({"sha256": digest.hexdigest(), "shape": list(study.X.shape), "seconds": round(seconds, 1),
                      "proxies": len(study.proxies)}))


def measure(how: str, data: Path, folder: Path) -> dict:
    folder.mkdir()
    run = run_measured([PYTHON, "-m", "bench.bench_study", "--child", how, str(data), str(folder)], cwd=ROOT)
    if run.returncode != 0:
        raise SystemExit(f"{how} failed with exit {run.returncode}")
    return {**json.loads(run.stdout.strip().splitlines()[-1]), "peak_rss_gb": round(run.peak_rss_bytes / GB, 3),
            "wall_s": round(run.wall_s, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_study")
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    parser.add_argument("--child", nargs=3, metavar=("HOW", "DATA", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return 0
    rows = 100_000 if args.quick else MILLION
    with tempfile.TemporaryDirectory(prefix="bench-study-") as tmp:
        data = Path(tmp) / "planted.parquet"
        write_planted_table(data, rows)
        size_mb = data.stat().st_size / 1e6
        ours = measure("by_column", data, Path(tmp) / "by_column")
        peer = measure("whole", data, Path(tmp) / "whole")
    if ours["sha256"] != peer["sha256"]:
        raise SystemExit("the two studies' encoded matrices differ")
    entry = {"value": ours["peak_rss_gb"], "unit": "GB peak RSS", "peer": "the table read whole",
             "peer_value": peer["peak_rss_gb"], "ratio": round(peer["peak_rss_gb"] / ours["peak_rss_gb"], 3),
             "goal": "below the peer's peak", "met": ours["peak_rss_gb"] < peer["peak_rss_gb"],
             "rows": rows, "columns": NUMERIC + 2, "file_mb": round(size_mb, 1), "encoded_shape": ours["shape"],
             "seconds": ours["seconds"], "peer_seconds": peer["seconds"], "same_matrix": True,
             "machine": machine_line()}
    print(json.dumps(entry, indent=2))
    print(f"by column {ours['peak_rss_gb']} GB, whole {peer['peak_rss_gb']} GB: ratio {entry['ratio']}; "
          f"wrote {merge_result('study_by_column', entry, quick=args.quick)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
