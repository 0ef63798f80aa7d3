"""Selectivity measures (placeholder docstring)."""

from catalogue.selectivity.scores import LayerScores, score_layer, score_units

__all__ = ["LayerScores", "score_layer", "score_units"]
