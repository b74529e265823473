"""Making fitted bundles smaller and faster: distillation, pruning, quantization, compress."""
