"""The schema reset flipgitops runs as a one-off flip-api task, and the evidence it leaves.

The hub guide's production procedure resets the database with ``DROP SCHEMA public CASCADE;
CREATE SCHEMA public;`` (flip-api's entrypoint then runs ``alembic upgrade head`` at boot,
`flip-api/Makefile`@013a56e6). FLIP ships no script for it, and its hub allows no other way
into the database than a flip-api task, so flipgitops sends its own short script as the
container's command: ``uv run python -c <script> --generation N``. It connects exactly as
flip-api does in production (`flip_api/db/database.py`@01328ab0: RDS Proxy at
``DB_HOST:DB_PORT``, user ``POSTGRES_USER``, database ``POSTGRES_DB``, a fresh IAM auth token
as the password, ``sslmode=require``, psycopg2 — all already in flip-api's image and task
environment) and prints one JSON line when both statements have run. That line on the task's
log stream is the only evidence of success: Fargate misreports one-off exit codes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

RESET_STARTED_BY = "flipgitops-reset-schema"
EVIDENCE_TAG = "schema-reset"

RESET_SCRIPT = """\
import json, os, sys
import boto3, psycopg2
generation = int(sys.argv[sys.argv.index("--generation") + 1])
host, port = os.environ["DB_HOST"], int(os.environ["DB_PORT"])
user, dbname = os.environ["POSTGRES_USER"], os.environ["POSTGRES_DB"]
region = os.environ.get("AWS_REGION") or boto3.session.Session().region_name
token = boto3.session.Session().client("rds", region_name=region).generate_db_auth_token(
    DBHostname=host, Port=port, DBUsername=user, Region=region)
conn = psycopg2.connect(host=host, port=port, user=user, password=token, dbname=dbname,
                        sslmode="require")
conn.autocommit = True
with conn.cursor() as cur:
    cur.execute("DROP SCHEMA public CASCADE;")
    cur.execute("CREATE SCHEMA public;")
conn.close()
print(json.dumps({"flipgitops": "schema-reset", "status": "reset", "generation": generation}),
      flush=True)
"""


def reset_command(generation: int) -> list[str]:
    return ["uv", "run", "python", "-c", RESET_SCRIPT, "--generation", str(generation)]


def is_reset_of(command: Sequence[str], generation: int) -> bool:
    """Whether a running task's command is this reset (for "never start a second one")."""
    cmd = list(command)
    return (RESET_SCRIPT in cmd and "--generation" in cmd
            and cmd[cmd.index("--generation") + 1:cmd.index("--generation") + 2]
            == [str(generation)])


def evidence(lines: Sequence[str], generation: int) -> bool:
    """The script's own line for this generation is on the log stream."""
    for line in lines:
        text = line.strip()
        if not text.startswith("{"):
            continue
        try:
            data = json.loads(text)
        except ValueError:
            continue
        if (isinstance(data, dict) and data.get("flipgitops") == EVIDENCE_TAG
                and data.get("status") == "reset" and data.get("generation") == generation):
            return True
    return False
