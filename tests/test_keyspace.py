"""Every Redis key is named in core/keyspace.py, and nowhere else in the service's code."""

import re
from pathlib import Path

from core import keyspace

ROOT = Path(__file__).resolve().parents[1]
# a string literal that starts a key of ours: "sneaky:…", f"{ns}:…", f"{self.ns}:…"
KEY_LITERAL = re.compile(r"""f?["']+(?:sneaky|\{(?:self\.)?ns\}|\{self\.jobs\.ns\}):(?! )""")


def test_no_key_is_spelled_outside_the_schema():
    offenders = []
    for folder in ("api", "core", "worker", "client"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "keyspace.py":
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if KEY_LITERAL.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_every_key_is_in_the_table_and_namespaced():
    table = keyspace.__doc__
    made = {
        "sneaky:job:{job_id}": keyspace.job("{job_id}"),
        "sneaky:tenant:{tenant}:jobs": keyspace.tenant_jobs("{tenant}"),
        "sneaky:done:{job_id}": keyspace.job_done("{job_id}"),
        "sneaky:batch:{batch_id}": keyspace.batch("{batch_id}"),
        "sneaky:batch:{batch_id}:jobs": keyspace.batch_jobs("{batch_id}"),
        "sneaky:apikey:{sha256}": keyspace.api_key("{sha256}"),
        "sneaky:apikeys": keyspace.api_keys(),
        "sneaky:idem:{tenant}:{sha256}": keyspace.idempotency("{tenant}", "{sha256}"),
        "sneaky:upload:{upload_key}": keyspace.upload("{upload_key}"),
        "sneaky:whsec:{tenant}": keyspace.webhook_secret("{tenant}"),
        "sneaky:leases": keyspace.leases(),
        "sneaky:window:interactive": keyspace.interactive_waiting(),
        "sneaky:fair:tenants": keyspace.fair_rotation(),
        "sneaky:fair:{tenant}": keyspace.fair_groups("{tenant}"),
    }
    for documented, built in made.items():
        assert documented == built and f"`{documented}`" in table
    assert keyspace.job("x", ns="test") == "test:job:x"
    assert all(f"`{q}`" in table or q in table for q in keyspace.QUEUES)
