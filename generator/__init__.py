"""Image generation for Dreamloom: recipes, diffusers pipelines, the GPU worker, PNG + provenance.

Modules (torch and diffusers are imported lazily, only by ``pipelines``, ``worker`` when it
loads a pipeline, and ``bench``):

- ``recipe``      Recipe (the federated recipe), GenerationResult, Timings — no torch
- ``errors``      the exception tree
- ``pipelines``   load_pipeline(): builtin:tiny, a local diffusers directory, or a hub id
- ``png``         write/read PNGs with the recipe in text chunks; blurhash
- ``provenance``  optional C2PA manifests (c2pa-python)
- ``worker``      GeneratorWorker (the one GPU owner) and the JobStore protocol
- ``testing``     InMemoryJobStore and fake pipelines for tests
- ``bench``       run_bench(): plain diffusers vs Dreamloom's path, side by side

This package imports neither ``instance``, ``activitypub`` nor ``webfinger``.
"""
