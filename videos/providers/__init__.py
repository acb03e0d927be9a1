"""Video providers behind one interface; `get_provider` builds one from Django settings."""

from __future__ import annotations

from importlib import import_module

from videos.providers.base import VideoProvider

# name -> "module:class"; a second provider (the official Kling API) registers here.
PROVIDERS = {
    "kie": "videos.providers.kie:KieProvider",
}


def get_provider(name: str = "kie") -> VideoProvider:
    """A provider configured from Django settings; raises ValueError for an unknown name."""
    try:
        module_name, class_name = PROVIDERS[name].split(":")
    except KeyError:
        raise ValueError(f"unknown video provider {name!r}") from None
    provider_class = getattr(import_module(module_name), class_name)
    return provider_class.from_settings()
