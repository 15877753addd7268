"""Publishing finished builds to S3, rsync servers and local directories.

boto3 is imported only when an S3 target is used, so importing this package
stays cheap for commands that never publish.
"""

from eib.publish.legacy import targets_from_legacy
from eib.publish.publisher import (
    PublishReport,
    TargetReport,
    publish_build,
    publish_error_log,
)
from eib.publish.targets import ProgressCallback, PublishProgress, TransferSettings

__all__ = [
    "ProgressCallback",
    "PublishProgress",
    "PublishReport",
    "TargetReport",
    "TransferSettings",
    "publish_build",
    "publish_error_log",
    "targets_from_legacy",
]
