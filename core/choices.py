"""Named constants of the kernel: the roles. Here, not in roles.py, so the models that store a role and
the role table that reads those models do not import each other."""

from django.db import models


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    ENGINEER = "engineer", "Engineer"
    APPROVER = "approver", "Approver"
    OPERATOR = "operator", "Operator"
    ADMIN = "admin", "Admin"


# Roles a team may give (admin is for all models only: it overrides rules and sets teams).
TEAM_ROLES = frozenset({Role.VIEWER, Role.ENGINEER, Role.APPROVER, Role.OPERATOR})
