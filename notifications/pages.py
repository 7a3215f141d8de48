"""The Notification destinations page: everyone signed in sees the list (name, type, id, how many
jobs name it); workspace admins also see where each one sends, and create, edit, delete and
test them. The API does the same (api/notification_destinations.py), with the same check."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from jobs.permissions import caller_of
from jobs.spec.settings import SettingsInvalid
from notifications import destinations, senders
from notifications.forms import TYPE_LABELS, DestinationForm
from notifications.models import Destination
from vault.crypto import Unreadable


def admin_only(request):
    if not caller_of(request.user).is_admin:
        raise PermissionDenied("Notification destinations are managed by workspace admins")


def destination_or_404(destination_id):
    destination = destinations.find(destination_id)
    if destination is None:
        raise Http404(f"There is no notification destination {destination_id}")
    return destination


def hint_of(destination):
    try:
        return destinations.target_hint(destination)
    except Unreadable:
        return "(its secrets cannot be read: LAKEFLOW_SECRETS_KEY changed)"


@login_required
def destination_list(request):
    admin = caller_of(request.user).is_admin
    rows = list(Destination.objects.all())
    naming = destinations.jobs_naming({d.id for d in rows})
    entries = [{"destination": d, "type": TYPE_LABELS.get(d.destination_type, d.destination_type),
                "hint": hint_of(d) if admin else "", "jobs": len(naming.get(d.id, []))} for d in rows]
    return render(request, "notifications/destinations.html",
                  {"nav": "notifications", "entries": entries, "admin": admin})


def edit_page(request, destination=None):
    """The form for a new destination (None) or for `destination`; saved on a valid POST."""
    admin_only(request)
    form = DestinationForm(request.POST or None, destination=destination)
    if request.method == "POST" and form.is_valid():
        display_name, config = form.api_input()
        try:
            if destination is None:
                destination = destinations.create_destination(display_name, config, request.user)
                messages.success(request, f"Notification destination {destination.display_name} created: "
                                          f"jobs name it by id {destination.id}.")
            elif destinations.update_destination(destination, display_name, config) is None:
                raise Http404(f"Notification destination {destination.id} was deleted meanwhile")
            else:
                messages.success(request, f"Notification destination {destination.display_name} saved.")
            return redirect("notifications:destinations")
        except SettingsInvalid as exc:
            form.show_problems(exc.problems)
        except Unreadable as exc:
            form.add_error(None, str(exc))
    return render(request, "notifications/destination_edit.html",
                  {"nav": "notifications", "form": form, "destination": destination})


@login_required
def new_destination(request):
    return edit_page(request)


@login_required
def edit_destination(request, destination_id):
    return edit_page(request, destination_or_404(destination_id))


@login_required
def delete_destination(request, destination_id):
    """A confirmation listing the jobs that name it (they keep doing so: their notifications to it
    fail saying it is gone), then the deletion."""
    admin_only(request)
    destination = destination_or_404(destination_id)
    if request.method == "POST":
        destinations.delete_destination(destination)
        messages.success(request, f"Notification destination {destination.display_name} deleted.")
        return redirect("notifications:destinations")
    naming = destinations.jobs_naming({destination.id}).get(destination.id, [])
    return render(request, "notifications/destination_delete.html",
                  {"nav": "notifications", "destination": destination, "jobs": naming})


@login_required
@require_POST
def send_test(request, destination_id):
    """Send a test notification now and tell what the receiver answered."""
    admin_only(request)
    destination = destination_or_404(destination_id)
    try:
        answer = senders.send_test(destination)
    except senders.DeliveryFailed as exc:
        said = f" The receiver answered: {exc.answer}" if exc.answer else ""
        messages.error(request, f"The test notification to {destination.display_name} failed: {exc}.{said}")
    else:
        messages.success(request, f"Test notification sent to {destination.display_name}. "
                                  f"The receiver answered: {answer or '(nothing)'}")
    return redirect("notifications:destinations")
