"""Page script (routed by ui.shell); the logic lives in ui.admin_models."""

from policies.identity import ADMIN
from ui.admin_models import render
from ui.errors import error_boundary
from ui.guard import require

principal = require(ADMIN)
with error_boundary("models"):
    render(principal)
