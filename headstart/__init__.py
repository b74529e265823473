"""headstart: adapt pretrained image and text models to small labeled datasets, and prove with
numbers that it beat training from scratch."""
from headstart.api import Headstart, fit, load
from headstart.backbones import build_backbone

__version__ = "0.1.0"

__all__ = ["Headstart", "__version__", "build_backbone", "fit", "load"]
