"""Shipped engine assets: manifests, trained weights and ONNX graphs (installed as ``streamfuse_engines``)."""
