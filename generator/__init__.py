"""Image generation for Dreamloom: recipes, diffusers pipelines, the GPU worker, PNG + provenance.

Modules (torch and diffusers are imported lazily, inside functions of ``devices``,
``locating``, ``safety``, ``fastpath``, ``loading``, ``pipelines``, ``worker`` and ``bench``):

- ``recipe``      Recipe (the federated recipe), GenerationResult, Timings — no torch
- ``errors``      the exception tree
- ``loading``     load_pipeline(): everything up to a ready Pipeline
- ``locating``    where ``[generator] model`` is (builtin:tiny, a directory, a hub id), what it
                  is made for (architecture, native size, steps), without loading it; weights hash
- ``devices``     device and dtype choice; recognising out-of-memory errors
- ``fastpath``    the CUDA fast path: TF32, fused QKV, channels_last, torch.compile, inductor cache
- ``safety``      the safety-checker protocol and the adapter for shipped checkers
- ``pipelines``   Pipeline: prompts, resolve, generate, decode, deadlines (re-exports load_pipeline)
- ``png``         write/read PNGs with the recipe in text chunks; blurhash
- ``provenance``  optional C2PA manifests (c2pa-python)
- ``worker``      GeneratorWorker (the one GPU owner) and the JobStore protocol
- ``testing``     InMemoryJobStore and fake pipelines for tests
- ``bench``       run_bench(): plain diffusers vs Dreamloom's path, side by side

This package imports neither ``instance``, ``activitypub`` nor ``webfinger``.
"""
