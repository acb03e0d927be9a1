"""Reelforge's REST API, version 1: thin views over `videos.services`, `videos.selectors` and
`videos.jobs`, each with its own small input and output serializers."""
