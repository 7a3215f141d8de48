"""The user settings page for personal access tokens: create one (with a comment and an
optional lifetime; its value is shown once), list yours, revoke one. The Token API does the same
over HTTP (api/tokens.py)."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from jobs.models import ApiToken


class NewTokenForm(forms.Form):
    comment = forms.CharField(max_length=200, required=False, help_text="What the token is for.")
    lifetime_days = forms.IntegerField(min_value=1, max_value=3650, required=False,
                                       help_text="Empty: until you revoke it.")


@login_required
def token_settings(request):
    form = NewTokenForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        days = form.cleaned_data["lifetime_days"]
        token, created = ApiToken.issue(request.user, form.cleaned_data["comment"],
                                        lifetime_seconds=days * 86400 if days else None)
        form = NewTokenForm()
    tokens = ApiToken.valid().filter(user=request.user).order_by("-id")
    return render(request, "jobs/tokens.html", {"nav": "tokens", "form": form, "created": created, "tokens": tokens})


@login_required
@require_POST
def revoke_token(request, token_id):
    revoked = ApiToken.objects.filter(id=token_id, user=request.user, revoked_at__isnull=True).update(
        revoked_at=timezone.now())
    if revoked:
        messages.success(request, "Token revoked: it stops working now.")
    else:
        messages.error(request, "No such token of yours.")
    return redirect("jobs:tokens")
