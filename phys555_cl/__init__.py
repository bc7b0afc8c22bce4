"""PHYS-555 contrastive learning course package."""
__version__ = "0.1.0"
