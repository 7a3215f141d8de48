"""Template context: whether the signed-in user administers the workspace (the Audit link)."""

from jobs.permissions import caller_of


def workspace_admin(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"is_workspace_admin": False}
    return {"is_workspace_admin": caller_of(user).is_admin}
