from core.db import run_env
from ingest.sync.state import IngestBase

run_env(IngestBase.metadata)
