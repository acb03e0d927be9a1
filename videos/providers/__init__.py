"""Video providers behind one interface; `get_provider` builds one from Django settings."""

from __future__ import annotations

from importlib import import_module

from videos.providers.base import VideoProvider

# name -> "module:class"; a project's `provider` is one of these names.
PROVIDERS = {
    "kie": "videos.providers.kie:KieProvider",
    "kling": "videos.providers.kling:KlingProvider",
}


def provider_class(name: str) -> type[VideoProvider]:
    """The provider's class, for what it is (its options), without configuring a client."""
    try:
        module_name, class_name = PROVIDERS[name].split(":")
    except KeyError:
        raise ValueError(f"unknown video provider {name!r}") from None
    found: type[VideoProvider] = getattr(import_module(module_name), class_name)
    return found


def get_provider(name: str = "kie") -> VideoProvider:
    """A provider configured from Django settings; raises ValueError for an unknown name."""
    return provider_class(name).from_settings()
