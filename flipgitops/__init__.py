"""flipgitops: a declarative GitOps reconciler for FLIP deployments."""

__version__ = "0.1.0"
