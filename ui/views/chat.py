"""Page script (routed by ui.shell); the logic lives in ui.chat."""

from ui.chat import render
from ui.errors import error_boundary
from ui.guard import require

principal = require(None)
with error_boundary("chat"):
    render(principal)
