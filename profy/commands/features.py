"""``profy features``: features + ``audio_stats.parquet`` for a corpus (cached)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from profy.commands._common import EXIT_OK, console

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("features", help="features + audio_stats.parquet for a corpus (cached)")
    p.add_argument("root", type=Path, help="corpus root")
    p.add_argument("--out", required=True, type=Path, help="folder for stats, index, manifest")
    p.add_argument("--cache", type=Path, default=None, help="feature cache (default: OUT/cache)")
    p.add_argument("--workers", type=int, default=2, help="processes (default: 2)")
    p.add_argument("--labels", type=Path, default=None)
    p.add_argument("--manifest", type=Path, default=None,
                   help="reuse a manifest.parquet from `profy data prepare` (no re-read of CSVs)")
    p.add_argument("--shard", default=None, metavar="K/N",
                   help="only shard K of N (K from 0; takes by sample_id, round-robin) into "
                        "the cache, no tables: one Indexed Job pod each, then one run without "
                        "--shard")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from profy.config import FeatureConfig
    from profy.contract.layout import MANIFEST_FILE
    from profy.data import read_manifest, write_manifest
    from profy.features import compute_features, featurize_corpus
    from profy.features._shard import parse_shard

    shard = None if args.shard is None else parse_shard(args.shard)  # bad K/N: exit 2 now
    if args.manifest is not None:  # reuse `profy data prepare`'s: skips re-parsing every CSV
        done = compute_features(args.root, read_manifest(args.manifest), args.out,
                                cfg=FeatureConfig(), cache_dir=args.cache,
                                workers=args.workers, progress=True, shard=shard)
    else:
        # One pass: each take's files are read, checked, hashed and featurized once, in
        # the workers; takes checked by an earlier run and unchanged are not read again.
        manifest, done = featurize_corpus(args.root, args.out, labels_path=args.labels,
                                          cfg=FeatureConfig(), cache_dir=args.cache,
                                          workers=args.workers, progress=True, shard=shard)
        if shard is None:  # a shard pod writes cache entries only
            write_manifest(manifest, args.out / MANIFEST_FILE)
    if shard is not None:
        cache = done.cache
        console().print(
            f"shard {shard}: {done.n_takes} takes in {done.seconds:.1f} s (cache: "
            f"{cache.hits} hits, {cache.misses} misses, {cache.rejected} rejected)"
            f"\ncache: {done.cache_dir}\nonce every shard is done, `profy features` without "
            "--shard writes audio_stats.parquet and feature_index.parquet (all cache hits)")
        return EXIT_OK
    _print_feature_run(done, console())
    return EXIT_OK


def _print_feature_run(run: Any, out: Any) -> None:
    out.print(
        f"{run.n_takes} takes in {run.seconds:.1f} s: {run.takes_per_s:.1f} takes/s, "
        f"{run.audio_s_per_s:.0f} s of audio per second "
        f"(cache: {run.cache.hits} hits, {run.cache.misses} misses, "
        f"{run.cache.rejected} rejected)\n"
        f"audio stats:   {run.audio_stats_path}\nfeature index: {run.index_path}\n"
        f"cache:         {run.cache_dir}")
