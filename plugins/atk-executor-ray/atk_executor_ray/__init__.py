"""atk executor ``ray``: a pipeline's steps run on a Ray cluster, a model instance per worker.

In a config::

    executor:
      ray: {address: auto, workers: 4, num_gpus: 1}

Ray itself is imported only when a run uses the executor, so ``atk --help``
and ``atk list`` do not load it.
"""

from atk_core import hookimpl

from .executor import RayExecutor

__all__ = ["RayExecutor"]


@hookimpl
def atk_register_executors(register):
    register("ray", RayExecutor)
