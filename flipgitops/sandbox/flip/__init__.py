"""The stand-in FLIP: plays FLIP's side of FLIP's documented contracts, no more.

FLIP's images cannot run in the sandbox, so this package plays them (docs/standin-flip.md).
The hub half:

- `world.StandinHub`: starts everything below against a running moto server;
- `seed.seed_hub`: builds the hub FLIP's Terraform and procedures would leave, either era;
- `hub.HubState`: the hub's database and what flip-api loaded at its last boot;
- `worker.HubWorker`: plays one-off flip-api tasks (`scripts`) and ECS's service scheduler;
- `flip_api`: FLIP's trust and admin routes; `registry`: an OCI registry like ghcr.io;
- `kits`: FL participant kits in S3, shaped like FLIP's.

It deliberately imports nothing from flipgitops' model (except the manifest, in the seeder
only), core, adapters or engine: a constant shared with the code under test would let both
be wrong together. FLIP's names live in `flipnames`, each with the FLIP file it came from.
"""
