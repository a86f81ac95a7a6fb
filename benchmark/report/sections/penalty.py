"""What the JPEG copy costs each encoder: full rows on both copies, paired image by image."""

from __future__ import annotations

from .. import pairs
from ..document import Report, section


@section("jpeg-penalty", reads=("predictions/",))
def jpeg_penalty(report: Report) -> str:
    return pairs.penalty_table(report.rows, report.results_path)
