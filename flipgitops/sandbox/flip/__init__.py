"""The stand-in FLIP: plays FLIP's side of FLIP's documented contracts, no more.

FLIP's images and a compose-v2 container engine cannot run in the sandbox, so this package
provides what a trust host would otherwise get from FLIP and Docker (docs/standin-flip.md):

- `checkout`: a git repository shaped like FLIP, with a `trust/` directory as FLIP ships it;
- `compose`: how `docker compose` v2 reads those files (env files, interpolation, merging);
- `container_cli`: the `docker` CLI a host's manifest names (`flip-standin-docker`);
- `trust_api`: a process that polls the hub the way FLIP's trust-api does and logs its lines;
- `world`: the one file that tells the stand-in where the (stand-in) hub listens.

It deliberately imports nothing from flipgitops' model, core, adapters or engine: a constant
shared with the code under test would let both be wrong together.
"""
