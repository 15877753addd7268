"""The stage cache: content-addressed results of the ostree, image and manifest stages.

Like osbuild's store, a stage result is filed under the sha256 of what the
stage receives (`keys`, derived from its `StageSpec`), so an unchanged key
means the stage would do exactly the same work and its result can be reused
(`store`); on a miss, `explain` says which input changed.
"""

from eib.execute.cache.explain import diff_inputs, explain, explain_all
from eib.execute.cache.keys import (
    canonical_json,
    commit_known,
    executor_digest,
    stage_inputs,
    stage_key,
    stage_keys,
    tool_version,
)
from eib.execute.cache.store import (
    CacheEntry,
    cached_stage,
    disk_usage,
    entries,
    entry_dir,
    gc,
    lookup,
    parse_size,
    reclaim_temporaries,
    restore,
    restore_into,
    store,
)
from eib.execute.stages import CACHED_PARTS, CACHED_STAGES

__all__ = [
    "CACHED_PARTS",
    "CACHED_STAGES",
    "CacheEntry",
    "cached_stage",
    "canonical_json",
    "commit_known",
    "diff_inputs",
    "disk_usage",
    "entries",
    "entry_dir",
    "executor_digest",
    "explain",
    "explain_all",
    "gc",
    "lookup",
    "parse_size",
    "reclaim_temporaries",
    "restore",
    "restore_into",
    "stage_inputs",
    "stage_key",
    "stage_keys",
    "store",
    "tool_version",
]
