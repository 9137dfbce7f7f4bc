"""interp_widget.analysis: experiments that return plain result objects (no widget imports).

* :mod:`~interp_widget.analysis.heads`: previous-token / induction / duplicate-token head scores.
"""

from interp_widget.analysis.heads import KINDS, HeadScores, head_scores, scores_from_patterns

__all__ = ["KINDS", "HeadScores", "head_scores", "scores_from_patterns"]
