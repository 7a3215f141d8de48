"""Who a git_source may reach (pure): a provider's credential goes only where that provider lives,
and a local repository only from LAKEFLOW_GIT_LOCAL_ROOTS, never from the server's own files."""

import pytest

from jobs.spec.git_source import credential_refusal, local_repository_path, local_repository_refusal


@pytest.mark.parametrize("provider, url", [
    ("gitHub", "https://github.com/org/repo.git"),
    ("gitHub", "https://GitHub.com:443/org/repo"),
    ("gitLab", "https://oauth2@gitlab.com/group/repo.git"),
    ("bitbucketCloud", "https://bitbucket.org/team/repo.git"),
    ("azureDevOpsServices", "https://org@dev.azure.com/org/project/_git/repo"),
    ("azureDevOpsServices", "https://org.visualstudio.com/project/_git/repo"),
    ("awsCodeCommit", "https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/repo"),
    ("gitHubEnterprise", "https://ghe.example.com/org/repo.git"),
    ("gitLabEnterpriseEdition", "http://127.0.0.1:8080/repo.git"),
    ("bitbucketServer", "http://[::1]:7990/scm/p/repo.git"),
    ("bitbucketServer", "http://localhost/scm/p/repo.git"),
])
def test_a_credential_goes_to_its_providers_hosts(provider, url):
    assert credential_refusal(provider, url) is None


@pytest.mark.parametrize("provider, url, why", [
    ("gitHub", "https://evil.example/org/repo.git", "only over https to github.com"),
    ("gitHub", "http://github.com/org/repo.git", "only over https to github.com"),
    ("gitHub", "https://github.com.evil.example/repo.git", "only over https to github.com"),
    ("gitHub", "https://github.com@evil.example/repo.git", "only over https to github.com"),
    ("gitHub", "https://github.com%2F@evil.example/repo.git", "only over https to github.com"),
    ("gitHub", "https://github.com\\@evil.example/repo.git", "only over https to github.com"),
    ("gitHub", "ssh://git@github.com/org/repo.git", "only over https to github.com"),
    ("gitLab", "https://gitlab.example.com/repo.git", "only over https to gitlab.com"),
    ("azureDevOpsServices", "https://a.b.visualstudio.com.evil/repo", "dev.azure.com or"),
    ("awsCodeCommit", "https://git-codecommit.s3.amazonaws.com/repo", "git-codecommit.<region>.amazonaws.com"),
    ("gitHubEnterprise", "http://ghe.example.com/org/repo.git", "only over https (or http to this machine)"),
    ("gitHubEnterprise", "http://localhost.evil.example/repo.git", "only over https (or http to this machine)"),
    ("gitLabEnterpriseEdition", "file:///srv/repo.git", "only over https (or http to this machine)"),
])
def test_a_credential_is_refused_elsewhere_with_the_reason(provider, url, why):
    assert why in credential_refusal(provider, url)


@pytest.mark.parametrize("url, path", [
    ("/srv/git/repo.git", "/srv/git/repo.git"),
    ("file:///srv/git/repo.git", "/srv/git/repo.git"),
    ("FILE:///srv/git/repo.git", "/srv/git/repo.git"),
    ("file:///srv/git/%2e%2e/secret", "/srv/git/../secret"),  # git decodes it: so do we
    ("file://somehost/srv/git/repo.git", "/srv/git/repo.git"),  # git ignores the host
    ("https://example.com/repo.git", None),
    ("git@example.com:repo.git", None),
])
def test_the_local_path_of_a_git_url_is_what_git_opens(url, path):
    assert local_repository_path(url) == path


ALLOWED, SERVER = ["/srv/git"], ["/srv/git/lakeflow", "/var/lakeflow-tasks"]


@pytest.mark.parametrize("given, real, why", [
    ("/srv/git/repo.git", ["/srv/git/repo.git"], None),
    ("/srv/other/repo.git", ["/srv/other/repo.git"], "outside the directories of LAKEFLOW_GIT_LOCAL_ROOTS (/srv/git)"),
    ("/srv/git", ["/srv/git"], "outside the directories of LAKEFLOW_GIT_LOCAL_ROOTS"),  # git would try /srv/git.git
    ("/srv/git/link", ["/srv/git/link", "/etc/repo.git"], "outside the directories"),  # one of git's guesses leads out
    ("/srv/git/lakeflow/x", ["/srv/git/lakeflow/x"], "lies in the server's own files"),
    ("/srv/git/cache", ["/var/lakeflow-tasks/git/repos/abc.git"], "lies in the server's own files"),
    ("", [""], "must name a directory"),
])
def test_a_local_repository_is_read_only_inside_the_allowed_roots(given, real, why):
    refused = local_repository_refusal(given, real, ALLOWED, SERVER)

    assert refused is None if why is None else why in refused


def test_no_local_repository_is_read_when_no_root_is_allowed():
    assert "LAKEFLOW_GIT_LOCAL_ROOTS" in local_repository_refusal("/srv/git/repo.git", ["/srv/git/repo.git"], [], SERVER)
