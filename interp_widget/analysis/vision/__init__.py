"""Vision: feature visualisation, layer overviews, dataset examples and tuning curves for CNNs.

Every function takes any ``torch.nn.Module`` CNN (or an interp_widget ``Model`` wrapping one, e.g.
``iw.load("shapes-cnn")``); layers are module paths (``"conv2"``, ``"layer1.0.conv2"``) and units
``"layer:channel"`` or ``"layer:channel@x,y"``. Results are the plain objects of :mod:`.results`.
Importing this package imports torch.
"""

from __future__ import annotations

from interp_widget.analysis.vision.examples import dataset_examples
from interp_widget.analysis.vision.featurevis import feature_vis, layer_overview
from interp_widget.analysis.vision.objectives import Objective
from interp_widget.analysis.vision.results import DatasetExamples, FeatureVisResult, LayerGrid, TuningCurves
from interp_widget.analysis.vision.stimuli import ShapesDataset
from interp_widget.analysis.vision.tuning import tuning
from interp_widget.analysis.vision.units import Unit

__all__ = ["DatasetExamples", "FeatureVisResult", "LayerGrid", "Objective", "ShapesDataset", "TuningCurves", "Unit",
           "dataset_examples", "feature_vis", "layer_overview", "tuning"]
