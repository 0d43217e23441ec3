"""Page script (routed by ui.shell); the logic lives in ui.admin_sources."""

from policies.identity import ADMIN
from ui.admin_sources import render
from ui.errors import error_boundary
from ui.guard import require

principal = require(ADMIN)
with error_boundary("sources"):
    render(principal)
