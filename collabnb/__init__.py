__version__ = "0.0.1"

# `Recommender` is the object users hold; importing it pulls in numpy and pandas only (fastai and PyTorch when a method needs them)
from .recommend import Recommender
