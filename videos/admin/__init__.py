"""The editors' workbench. Like the API, it writes teams, members, projects and prompts only
through `videos.services` (see `ServiceAdmin`), budgets through `billing.services` and jobs
through `videos.jobs`, so each rule is written once and a refusal reads the same through every
door. Every admin class here is team-scoped (`videos.admin_scope`): a staff user sees and
changes only their teams' rows, with the rights their role gives; superusers see everything.
"""

from videos.admin import (  # noqa: F401  (each module registers its admins)
    batches,
    jobs,
    projects,
    prompts,
    teams,
    tokens,
    webhooks,
)
