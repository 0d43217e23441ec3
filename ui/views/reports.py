"""Page script (routed by ui.shell); the logic lives in ui.compliance_reports."""

from policies.identity import COMPLIANCE
from ui.compliance_reports import render
from ui.errors import error_boundary
from ui.guard import require

principal = require(COMPLIANCE)
with error_boundary("reports"):
    render(principal)
