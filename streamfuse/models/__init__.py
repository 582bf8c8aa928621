"""Torch nn.Modules of the learned engines (training and export only; the runtime never imports torch)."""
