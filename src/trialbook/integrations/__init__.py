"""Bridges to the tools people already train and track with.

``trialbook.integrations.ultralytics`` tracks Ultralytics YOLO training live;
``trialbook.integrations.importers`` brings in history recorded elsewhere (Ultralytics run
folders, MLflow, TensorBoard). Heavy packages (ultralytics, torch, tensorboard) are
imported inside functions, never at import time.
"""
