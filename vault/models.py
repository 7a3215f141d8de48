"""Secret scopes, their secrets (encrypted at rest, vault/crypto.py) and ACLs, and which values
each task attempt fetched (so the server can redact them from what it shows of that attempt)."""

from django.conf import settings as django_settings
from django.db import models
from django.utils import timezone

from vault.rules import Permission


class SecretScope(models.Model):
    name = models.CharField(max_length=128, unique=True)
    backend_type = models.CharField(max_length=20, default="DATABRICKS")
    created_by = models.ForeignKey(django_settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    def __str__(self):
        return self.name


class Secret(models.Model):
    scope = models.ForeignKey(SecretScope, on_delete=models.CASCADE, related_name="secrets")
    key = models.CharField(max_length=128)
    encrypted_value = models.BinaryField()  # a Fernet token: never the value itself
    last_updated_timestamp = models.BigIntegerField()  # ms since the epoch, as the API answers it

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="vault_one_secret_per_key")]

    def __str__(self):
        return f"{self.scope.name}/{self.key}"


class SecretAcl(models.Model):
    """A permission on a whole scope for a principal: a user name, a group name, a service
    principal's application id, or `users` (everyone)."""

    scope = models.ForeignKey(SecretScope, on_delete=models.CASCADE, related_name="acls")
    principal = models.CharField(max_length=255)
    permission = models.CharField(max_length=10, choices=[(p.value, p.value) for p in Permission])

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "principal"], name="vault_one_acl_per_principal")]


class SecretFetch(models.Model):
    """A value a task attempt read, kept (encrypted) for redacting that attempt's output: it stays
    redacted after the secret changes or its scope is deleted."""

    attempt = models.ForeignKey("runs.TaskRun", on_delete=models.CASCADE, related_name="+")
    scope_name = models.CharField(max_length=128)
    key = models.CharField(max_length=128)
    secret_updated = models.BigIntegerField()  # the secret's last_updated_timestamp when read
    encrypted_value = models.BinaryField()
    fetched_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["attempt", "scope_name", "key", "secret_updated"],
                                               name="vault_one_fetch_per_value")]


class GitCredential(models.Model):
    """A user's credential for one Git provider (the Git credentials API, api/git_credentials.py),
    used to fetch the git_source of the runs that act as them. The token is encrypted at rest
    (vault/crypto.py) and never returned."""

    user = models.ForeignKey(django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="git_credentials")
    git_provider = models.CharField(max_length=40)  # jobs.spec.git_source.GIT_PROVIDERS' spelling
    git_username = models.CharField(max_length=255, blank=True, default="")
    git_email = models.CharField(max_length=255, blank=True, default="")
    name = models.CharField(max_length=255, blank=True, default="")
    encrypted_token = models.BinaryField()  # a Fernet token: never the value itself
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "git_provider"], name="vault_one_git_credential_per_provider")]

    def __str__(self):
        return f"{self.git_provider} credential of user {self.user_id}"
