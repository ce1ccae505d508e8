"""Reference harness for aligning medical vision-language models with preference optimization.

Importing the package is cheap: nothing here imports torch, transformers or datasets.
"""

__version__ = "0.1.0"
