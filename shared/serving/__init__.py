"""What serving needs of a model, and nothing of training.

Text preparation, the routing rule, the ONNX tagger with its format constants, and
batch scoring over any tagger. Everything here runs on numpy and onnxruntime alone:
no module in this package imports scikit-learn, scipy, skl2onnx, the ``onnx`` package,
matplotlib or joblib (``tests/shared/serving`` checks it), so a service that serves a
model starts without the training stack. Training (``shared.ml``) imports from here,
never the other way round.
"""
