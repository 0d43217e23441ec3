from core.db import run_env
from policies.tables import PoliciesBase

run_env(PoliciesBase.metadata)
