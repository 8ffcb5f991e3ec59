"""atk model backend ``anthropic``: Claude through Anthropic's Messages API, with prompt
caching on by default and Message Batches (``batch: true``)."""

from atk_core import hookimpl

from .backend import AnthropicBackend

__all__ = ["AnthropicBackend"]


@hookimpl
def atk_register_model_backends(register):
    register("anthropic", AnthropicBackend)
