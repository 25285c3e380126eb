"""The stand-in FLIP: plays FLIP's side of FLIP's documented contracts, no more.

FLIP's images and a compose-v2 container engine cannot run in the sandbox, so this package
provides what a trust host would otherwise get from FLIP and Docker (docs/standin-flip.md).

The trust half:

- `checkout`: a git repository shaped like FLIP, with a `trust/` directory as FLIP ships it;
- `compose`: how `docker compose` v2 reads those files (env files, interpolation, merging);
  `compose_names`: how it names a project (all that `compose ps`/`logs`/`down` need of it);
- `container_cli`: the `docker` CLI a host's manifest names (`flip-standin-docker`);
- `trust_api`: a process that polls the hub the way FLIP's trust-api does and logs its lines;
- `world` (write_world/read_world): the one file that tells the stand-in where the hub listens.

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
