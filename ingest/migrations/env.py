from ingest.state import IngestBase
from policies.db import run_env

run_env(IngestBase.metadata)
