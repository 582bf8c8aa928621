"""The one home of training data: stills, synthetic and real video, stereo, degradations, manifests.

``benchmark`` holds the one exclusion list; every dataset maker writes a manifest (``manifest``) that refuses it.
Nothing here is imported by the runtime; modules are imported directly (``from streamfuse.data.video import ...``).
"""
